package server

import (
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
)

// Invitations: admins and owners invite (only an owner invites an owner);
// the invitee answers with the invitation token in the path, no API token.

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
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, inv)
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
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{
		"rows":    rows,
		"invited": counts[cs.ImportInvited],
		"skipped": counts[cs.ImportSkipped],
		"errors":  counts[cs.ImportError],
	})
}

func (s *Server) acceptInvitation(c *gin.Context) {
	var req struct {
		Name string `json:"name"`
	}
	if !bindOptionalJSON(c, &req) {
		return
	}
	a, err := s.Store.AcceptInvitation(c, c.Param("token"), req.Name)
	if err != nil {
		s.fail(c, err)
		return
	}
	// A new member: link their Slack user by e-mail, in the background.
	s.Slack.LinkMemberLater(a.Member.OrgID, a.Member.ID, a.User.Email)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, a)
}

func (s *Server) declineInvitation(c *gin.Context) {
	if err := s.Store.DeclineInvitation(c, c.Param("token")); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "declined"})
}
