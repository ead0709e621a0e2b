package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// Teams: any member reads them; admins and owners create, change and delete
// them; admins of a team (and org admins) manage its membership; a member
// may leave a team.

type teamJSON struct {
	cs.Team
	Members []cs.TeamMembership `json:"members"`
}

type teamRequest struct {
	Name           *string `json:"name"`
	SlackChannelID *string `json:"slack_channel_id"`
}

func (s *Server) listTeams(c *gin.Context) {
	org := currentMember(c).OrgID
	listPage(s, c, func(p cs.Page) ([]cs.Team, error) { return s.Store.ListTeams(c, org, p) },
		func(t cs.Team) string { return t.ID })
}

func (s *Server) writeTeam(c *gin.Context, status int, t cs.Team) {
	members, err := s.Store.TeamMembers(c, t.OrgID, t.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	if members == nil {
		members = []cs.TeamMembership{}
	}
	c.JSON(status, teamJSON{Team: t, Members: members})
}

func (s *Server) getTeam(c *gin.Context) {
	id, ok := pathID(c, "team")
	if !ok {
		return
	}
	t, err := s.Store.Team(c, currentMember(c).OrgID, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeTeam(c, http.StatusOK, t)
}

func (s *Server) createTeam(c *gin.Context) {
	var req teamRequest
	if !s.requireAdmin(c, "create teams") || !bindJSON(c, &req) {
		return
	}
	t, err := s.Store.CreateTeam(c, currentMember(c).OrgID, store.TeamInput(req))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeTeam(c, http.StatusCreated, t)
}

func (s *Server) updateTeam(c *gin.Context) {
	id, ok := pathID(c, "team")
	var req teamRequest
	if !ok || !s.requireAdmin(c, "change teams") || !bindJSON(c, &req) {
		return
	}
	t, err := s.Store.UpdateTeam(c, currentMember(c).OrgID, id, store.TeamInput(req))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeTeam(c, http.StatusOK, t)
}

func (s *Server) deleteTeam(c *gin.Context) {
	id, ok := pathID(c, "team")
	if !ok || !s.requireAdmin(c, "delete teams") {
		return
	}
	if err := s.Store.DeleteTeam(c, currentMember(c).OrgID, id); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// teamAndMember reads the team and member path ids and checks that the
// caller manages the team's membership (org admin or team admin); self
// allows a member to act on themself (leaving).
func (s *Server) teamAndMember(c *gin.Context, self bool) (teamID, memberID string, ok bool) {
	if teamID, ok = pathID(c, "team"); !ok {
		return
	}
	if memberID, ok = pathID(c, "member"); !ok {
		return
	}
	me := currentMember(c)
	if _, err := s.Store.Team(c, me.OrgID, teamID); err != nil {
		s.fail(c, err)
		return "", "", false
	}
	if isAdmin(me) || (self && memberID == me.ID) {
		return teamID, memberID, true
	}
	role, err := s.Store.TeamRole(c, me.OrgID, teamID, me.ID)
	if err != nil {
		s.fail(c, err)
		return "", "", false
	}
	if role != cs.TeamAdmin {
		s.fail(c, cs.Errorf(cs.EFORBIDDEN, "only the team's admins, and admins and owners of the organization, manage the team's membership"))
		return "", "", false
	}
	return teamID, memberID, true
}

func (s *Server) putTeamMember(c *gin.Context) {
	teamID, memberID, ok := s.teamAndMember(c, false)
	var req struct {
		Role cs.TeamRole `json:"role"`
	}
	if !ok || !bindOptionalJSON(c, &req) {
		return
	}
	tm, err := s.Store.PutTeamMember(c, currentMember(c).OrgID, teamID, memberID, req.Role)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.posts.DirectoryChanged(c, currentMember(c).OrgID, store.RefreshScope{MemberIDs: []string{memberID}, TeamID: teamID},
		"a member was added to a team")
	c.JSON(http.StatusOK, tm)
}

func (s *Server) removeTeamMember(c *gin.Context) {
	teamID, memberID, ok := s.teamAndMember(c, true)
	if !ok {
		return
	}
	if err := s.Store.RemoveTeamMember(c, currentMember(c).OrgID, teamID, memberID); err != nil {
		s.fail(c, err)
		return
	}
	s.posts.DirectoryChanged(c, currentMember(c).OrgID, store.RefreshScope{MemberIDs: []string{memberID}, TeamID: teamID},
		"a member was removed from a team")
	c.Status(http.StatusNoContent)
}
