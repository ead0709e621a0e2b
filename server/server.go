// Package server is Countersign's HTTP API (Gin). It only translates between
// HTTP and the store or Temporal: rules live in the store and the workflows.
package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/media"
	"github.com/countersign/countersign/internal/metrics"
	"github.com/countersign/countersign/internal/posts"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/secrets"
	csslack "github.com/countersign/countersign/internal/slack"
	"github.com/countersign/countersign/internal/store"
)

// maxBodyBytes bounds every request body (SPEC §6: 1 MiB).
const maxBodyBytes = 1 << 20

// postIDKey carries a post created by the request, for the access log.
const postIDKey = "countersign.post_id"

// Deps are what the API needs.
type Deps struct {
	Store    *store.Store
	Temporal client.Client
	Logger   *slog.Logger
	Metrics  *metrics.Metrics // optional
	// Slack is the Slack integration (optional): POST /slack/interactions
	// answers 404 without it.
	Slack *csslack.Service
	// Signer signs the decisions and edits the API and Slack send (SPEC §8);
	// without one they go unsigned and the workflow ignores the decisions.
	Signer *secrets.DecisionSigner
	// ReviewLinks checks external reviewers' links (GET/POST /review/{token});
	// without it those pages say review links are not enabled.
	ReviewLinks *secrets.ReviewLinks
	// UpdateWait is how long a post change waits for a worker before it is
	// sent as a signal (0: 5 s, SPEC §3).
	UpdateWait time.Duration
	// Media stores uploads and checks posts' images; without it the media
	// routes answer 503 and posts with images are refused.
	Media *media.Service
	// MediaURLs checks signed media URLs (nil: only members read media).
	MediaURLs *media.URLs
	// MailQueued is told when invitations were queued for mail (the
	// dispatcher polls at once); nil without SMTP.
	MailQueued func()
	// PublicURL is COUNTERSIGN_PUBLIC_URL, for the links the accept page
	// shows ("" uses the request's host).
	PublicURL string
	// MemberRate limits each member's decisions and edits (zero:
	// posts.PerMember).
	MemberRate posts.Rate
}

// Server holds the API's dependencies and routes.
type Server struct {
	Deps
	engine *gin.Engine
	// posts holds the rules of submitting and changing posts.
	posts *posts.Service
	// reviews opens and renders external reviewers' links (nil without ReviewLinks).
	reviews *review.Pages
}

func init() { gin.SetMode(gin.ReleaseMode) }

// New builds the API.
func New(d Deps) *Server {
	s := &Server{Deps: d, engine: gin.New()}
	pd := posts.Deps{Store: d.Store, Comments: d.Store, Workflows: posts.NewWorkflows(d.Temporal), Logger: d.Logger,
		Signer: d.Signer, Wait: d.UpdateWait, MemberRate: d.MemberRate}
	if d.Media != nil { // a nil *media.Service must stay a nil interface
		pd.Media = d.Media
	}
	s.posts = posts.New(pd)
	if d.ReviewLinks != nil {
		s.reviews = &review.Pages{Links: d.ReviewLinks, Store: d.Store, Comments: review.StoreComments(d.Store)}
		if d.MediaURLs != nil && d.MediaURLs.Signer != nil {
			s.reviews.MediaURL = d.MediaURLs.ThumbnailURL
		}
	}
	e := s.engine
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.Use(s.recoverer(), s.accessLog(), limitBody)
	e.NoRoute(func(c *gin.Context) {
		problem(c, http.StatusNotFound, "not_found", "no such route: "+c.Request.Method+" "+c.Request.URL.Path, nil)
	})
	e.NoMethod(func(c *gin.Context) {
		problem(c, http.StatusMethodNotAllowed, "method_not_allowed", c.Request.Method+" is not allowed on "+c.Request.URL.Path, nil)
	})

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	// No /metrics here: it counts every org's posts, so it has its own
	// listener (app.ServeMetrics, SPEC §8).
	e.GET("/openapi.yaml", s.openAPI)

	// Slack signs its requests; they carry no API token.
	e.POST("/slack/interactions", s.slackInteractions)
	e.POST("/slack/events", s.slackEvents)

	// An external reviewer's page: the token in the path is the credential.
	e.GET("/review/:token", s.reviewPage)
	e.POST("/review/:token", s.reviewAnswer)

	// The invitee answers with the invitation token in the path, and an
	// existing user with their own API token too (optional here).
	e.POST("/v1/invitations/:token/accept", s.acceptInvitation)
	e.POST("/v1/invitations/:token/decline", s.declineInvitation)
	// The accept link of the invitation mail: a small HTML page.
	e.GET("/invitations/:token", s.invitationPage)
	e.POST("/invitations/:token", s.invitationPageAnswer)

	// An image is read by members of its org (API token) or by whoever
	// holds a signed URL of it (Slack, webhook receivers): see mediaAccess.
	e.GET("/v1/orgs/:org/media/:media", s.mediaAccess, s.getMedia)

	v1 := e.Group("/v1", s.authenticate)
	v1.GET("/me", s.me)
	v1.PATCH("/me", s.updateMe)
	v1.GET("/me/tokens", s.listTokens)
	v1.POST("/me/tokens", s.createToken)
	v1.DELETE("/me/tokens/:token", s.revokeToken)
	v1.GET("/me/invitations", s.myInvitations)
	v1.POST("/me/invitations/:invitation/accept", s.acceptMyInvitation)
	v1.POST("/me/invitations/:invitation/decline", s.declineMyInvitation)

	org := v1.Group("/orgs/:org", s.orgMember)
	org.POST("/invitations", s.invite)
	org.POST("/invitations/import", s.importInvitations)
	org.GET("/invitations", s.listInvitations)
	org.DELETE("/invitations/:invitation", s.revokeInvitation)
	org.GET("/audit", s.orgAudit)
	org.GET("/members", s.listMembers)
	org.GET("/members/:member", s.getMember)
	org.PATCH("/members/:member", s.updateMember)
	org.DELETE("/members/:member", s.removeMember)
	org.PUT("/members/:member/absence", s.putAbsence)
	org.DELETE("/members/:member/absence", s.deleteAbsence)
	org.GET("/teams", s.listTeams)
	org.POST("/teams", s.createTeam)
	org.GET("/teams/:team", s.getTeam)
	org.PATCH("/teams/:team", s.updateTeam)
	org.DELETE("/teams/:team", s.deleteTeam)
	org.PUT("/teams/:team/members/:member", s.putTeamMember)
	org.DELETE("/teams/:team/members/:member", s.removeTeamMember)
	org.GET("/accounts", s.listAccounts)
	org.POST("/accounts", s.createAccount)
	org.GET("/accounts/:account", s.getAccount)
	org.PATCH("/accounts/:account", s.updateAccount)
	org.DELETE("/accounts/:account", s.deleteAccount)
	org.GET("/accounts/:account/permissions", s.getPermissions)
	org.PUT("/accounts/:account/permissions", s.putPermissions)
	org.GET("/approval-chains", s.listChains)
	org.POST("/approval-chains", s.createChain)
	org.GET("/approval-chains/:chain", s.getChain)
	org.PUT("/approval-chains/:chain", s.replaceChain)
	org.DELETE("/approval-chains/:chain", s.deleteChain)
	org.GET("/reports/approvals", s.approvalReport)
	s.postRoutes(org)
	org.POST("/media", s.uploadMedia)
	return s
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Routes lists the registered method and path templates (for the OpenAPI check).
func (s *Server) Routes() gin.RoutesInfo { return s.engine.Routes() }

// HTTPServer wraps the handler with the timeouts a public listener needs.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}

func limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		limit := int64(maxBodyBytes)
		if c.FullPath() == uploadRoute && c.Request.Method == http.MethodPost {
			limit = maxUploadBody
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	}
	c.Next()
}

// accessLog logs one line per request with the route template, never the
// raw path: invitation tokens travel in paths.
func (s *Server) accessLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		took := time.Since(start)
		if s.Metrics != nil {
			s.Metrics.ObserveHTTP(c.Request.Method, route, c.Writer.Status(), took)
		}
		attrs := []slog.Attr{
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.Int("status", c.Writer.Status()),
			slog.Duration("duration", took),
		}
		// Lines about a post carry its org, id and workflow id.
		if org := c.Param("org"); org != "" {
			attrs = append(attrs, slog.String("org", org))
		}
		if post := c.Param("post"); post != "" {
			attrs = append(attrs, slog.String("post_id", post), slog.String("workflow_id", cs.WorkflowID(post)))
		} else if id := c.GetString(postIDKey); id != "" {
			attrs = append(attrs, slog.String("post_id", id), slog.String("workflow_id", cs.WorkflowID(id)))
		}
		s.Logger.LogAttrs(c.Request.Context(), slog.LevelInfo, "http request", attrs...)
	}
}

// recoverer turns a panic into a logged 500 problem instead of a dropped connection.
func (s *Server) recoverer() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				s.Logger.Error("panic in handler", "route", c.FullPath(), "panic", r)
				problem(c, http.StatusInternalServerError, "internal", "internal error", nil)
				c.Abort()
			}
		}()
		c.Next()
	}
}
