package server

import (
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// Invitations: admins and owners invite (only an owner invites an owner),
// list the pending ones and revoke them. The invitee answers with the
// invitation token in the path: anonymously when the e-mail has no user yet
// (accepting creates it), with their own API token when it has one.

func (s *Server) invite(c *gin.Context) {
	var req cs.InvitationRequest
	if !s.requireAdmin(c, "invite members") || !bindJSON(c, &req) {
		return
	}
	me := currentMember(c)
	if req.OrgRole == cs.RoleOwner && me.OrgRole != cs.RoleOwner {
		s.fail(c, cs.Errorf(cs.EFORBIDDEN, "only an owner can invite an owner"))
		return
	}
	inv, err := s.Store.Invite(c, me.OrgID, me.ID, req)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.mailQueued(inv)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, inv)
}

// mailQueued wakes the mail dispatcher for an invitation it must send.
func (s *Server) mailQueued(inv cs.Invitation) {
	if inv.Delivery == cs.DeliveryQueued && s.MailQueued != nil {
		s.MailQueued()
	}
}

// importInvitations answers POST …/invitations/import: a text/csv body of at
// most cs.MaxImportRows data rows, refused whole when it is not CSV or too
// long, else a result per row.
func (s *Server) importInvitations(c *gin.Context) {
	if !s.requireAdmin(c, "import invitations") {
		return
	}
	if ct := c.ContentType(); ct != "text/csv" {
		problem(c, http.StatusUnsupportedMediaType, "unsupported_media_type",
			"send the file as text/csv with a header row: email,name,org_role,teams", nil)
		return
	}
	data, err := io.ReadAll(c.Request.Body)
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		problem(c, http.StatusRequestEntityTooLarge, "body_too_large", "the file is larger than 1 MiB; nothing was imported", nil)
		return
	}
	if err != nil {
		problem(c, http.StatusBadRequest, "invalid_body", "the file could not be read", nil)
		return
	}
	lines, err := cs.ParseInvitationCSV(data)
	if err != nil {
		s.fail(c, err)
		return
	}
	rows, err := s.Store.ImportInvitations(c, currentMember(c).OrgID, currentMember(c), lines)
	if err != nil {
		s.fail(c, err)
		return
	}
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.Result]++
		if r.Invitation != nil {
			s.mailQueued(*r.Invitation)
		}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{
		"rows":    rows,
		"invited": counts[cs.ImportInvited],
		"skipped": counts[cs.ImportSkipped],
		"errors":  counts[cs.ImportError],
	})
}

// optionalUser authenticates the caller when the request carries an
// Authorization header: nil without one; false (with a 401 written) for a
// bad one.
func (s *Server) optionalUser(c *gin.Context) (*cs.User, bool) {
	if c.GetHeader("Authorization") == "" {
		return nil, true
	}
	u, ok := s.bearerUser(c)
	return &u, ok
}

// answerFailed writes an invitation answer's error; a 401 tells the client
// how to authenticate.
func (s *Server) answerFailed(c *gin.Context, err error) {
	if cs.ErrorCode(err) == cs.EINVITATIONNEEDSTOKEN {
		c.Header("WWW-Authenticate", `Bearer realm="countersign"`)
	}
	s.fail(c, err)
}

func (s *Server) acceptInvitation(c *gin.Context) {
	var req struct {
		Name *string `json:"name"`
	}
	if !bindOptionalJSON(c, &req) {
		return
	}
	caller, ok := s.optionalUser(c)
	if !ok {
		return
	}
	var (
		a   cs.Accepted
		err error
	)
	if caller != nil {
		// An existing user keeps their name (SPEC §2: nothing about them
		// changes); a name sent along, as the SPEC's request shape has it,
		// is ignored rather than refused. They change it with PATCH /v1/me.
		a, err = s.Store.AcceptInvitationAs(c, c.Param("token"), *caller)
	} else {
		var name string
		if req.Name != nil {
			name = *req.Name
		}
		a, err = s.Store.AcceptInvitation(c, c.Param("token"), name)
	}
	if err != nil {
		s.answerFailed(c, err)
		return
	}
	// A new member: link their Slack user by e-mail, in the background.
	s.Slack.LinkMemberLater(a.Member.OrgID, a.Member.ID, a.User.Email)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, a)
}

func (s *Server) declineInvitation(c *gin.Context) {
	caller, ok := s.optionalUser(c)
	if !ok {
		return
	}
	if err := s.Store.DeclineInvitation(c, c.Param("token"), caller); err != nil {
		s.answerFailed(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "declined"})
}

// listInvitations answers the org's pending invitations (admins and owners).
func (s *Server) listInvitations(c *gin.Context) {
	if !s.requireAdmin(c, "list invitations") {
		return
	}
	org := currentMember(c).OrgID
	listPage(s, c, func(p cs.Page) ([]cs.Invitation, error) { return s.Store.ListInvitations(c, org, p) },
		func(inv cs.Invitation) string { return inv.ID })
}

// revokeInvitation revokes a pending invitation (admins and owners).
func (s *Server) revokeInvitation(c *gin.Context) {
	if !s.requireAdmin(c, "revoke invitations") {
		return
	}
	id, ok := pathID(c, "invitation")
	if !ok {
		return
	}
	me := currentMember(c)
	if err := s.Store.RevokeInvitation(c, me.OrgID, id, store.Actor{MemberID: me.ID, Source: cs.SourceAPI}); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
