package server

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// Members: any member reads the directory; admins and owners change roles
// and remove members; only an owner grants or takes away owner; a member may
// leave the org, clear their Slack id, and set it to a Slack user whose
// e-mail (users.info) is theirs. Admins set any Slack id, audited.

func (s *Server) listMembers(c *gin.Context) {
	org := currentMember(c).OrgID
	listPage(s, c, func(p cs.Page) ([]cs.Member, error) { return s.Store.ListMembers(c, org, p) },
		func(m cs.Member) string { return m.ID })
}

type memberJSON struct {
	cs.Member
	Teams []cs.TeamMembership `json:"teams"`
}

func (s *Server) writeMember(c *gin.Context, status int, m cs.Member) {
	teams, err := s.Store.MemberTeams(c, m.OrgID, m.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	if teams == nil {
		teams = []cs.TeamMembership{}
	}
	c.JSON(status, memberJSON{Member: m, Teams: teams})
}

func (s *Server) getMember(c *gin.Context) {
	id, ok := pathID(c, "member")
	if !ok {
		return
	}
	m, err := s.Store.Member(c, currentMember(c).OrgID, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeMember(c, http.StatusOK, m)
}

func (s *Server) updateMember(c *gin.Context) {
	id, ok := pathID(c, "member")
	if !ok {
		return
	}
	var req struct {
		OrgRole     *cs.OrgRole `json:"org_role"`
		SlackUserID *string     `json:"slack_user_id"`
	}
	if !bindJSON(c, &req) {
		return
	}
	me := currentMember(c)
	target, err := s.Store.Member(c, me.OrgID, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	switch {
	case req.OrgRole != nil && !isAdmin(me):
		s.fail(c, cs.Errorf(cs.EFORBIDDEN, "only admins and owners can change a member's role"))
		return
	case req.OrgRole != nil && (*req.OrgRole == cs.RoleOwner || target.OrgRole == cs.RoleOwner) &&
		*req.OrgRole != target.OrgRole && me.OrgRole != cs.RoleOwner:
		s.fail(c, cs.Errorf(cs.EFORBIDDEN, "only an owner can grant or take away the owner role"))
		return
	case req.SlackUserID != nil && !isAdmin(me) && me.ID != target.ID:
		s.fail(c, cs.Errorf(cs.EFORBIDDEN, "only admins, owners and the member themself can set a member's Slack id"))
		return
	}
	u := store.MemberUpdate{OrgRole: req.OrgRole, SlackUserID: req.SlackUserID}
	if isAdmin(me) {
		u.Admin = &store.Actor{MemberID: me.ID, Source: cs.SourceAPI}
	} else if req.SlackUserID != nil {
		// A member links only the Slack user whose e-mail is theirs, else
		// their colleague's clicks would count as theirs. Clearing is free.
		id := strings.TrimSpace(*req.SlackUserID)
		if id != "" && id != target.SlackUserID {
			if !store.ValidSlackUserID(id) {
				s.fail(c, &cs.Error{Code: cs.EINVALID, Message: "invalid member update",
					Fields: []cs.FieldError{{Field: "slack_user_id", Message: "must be a Slack user id such as U0123ABCD"}}})
				return
			}
			if err := s.Slack.CheckUserEmail(c, id, target.Email); err != nil {
				s.fail(c, err)
				return
			}
		}
	}
	m, err := s.Store.UpdateMember(c, me.OrgID, id, u)
	if err != nil {
		s.fail(c, err)
		return
	}
	if req.OrgRole != nil && *req.OrgRole != target.OrgRole { // admins approve on every account
		s.posts.DirectoryChanged(c, me.OrgID, store.RefreshScope{MemberIDs: []string{id}, RoleSteps: true}, "a member's role changed")
	}
	s.writeMember(c, http.StatusOK, m)
}

func (s *Server) removeMember(c *gin.Context) {
	id, ok := pathID(c, "member")
	if !ok {
		return
	}
	me := currentMember(c)
	target, err := s.Store.Member(c, me.OrgID, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	switch {
	case target.ID == me.ID: // leaving is always allowed, but for the last owner (the store's check)
	case !isAdmin(me):
		s.fail(c, cs.Errorf(cs.EFORBIDDEN, "only admins and owners can remove members"))
		return
	case target.OrgRole == cs.RoleOwner && me.OrgRole != cs.RoleOwner:
		s.fail(c, cs.Errorf(cs.EFORBIDDEN, "only an owner can remove an owner"))
		return
	}
	if err := s.Store.RemoveMember(c, me.OrgID, id); err != nil {
		s.fail(c, err)
		return
	}
	s.posts.DirectoryChanged(c, me.OrgID, store.RefreshScope{MemberIDs: []string{id}}, "a member was removed")
	c.Status(http.StatusNoContent)
}
