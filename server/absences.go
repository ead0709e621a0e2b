package server

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// Absences (SPEC §2 Member): the member themself or an admin sets or ends
// one; every open step that awaits the member then also accepts the
// delegate, until the absence ends. The store validates and audits; the
// posts service tells the open posts it touches.

func (s *Server) putAbsence(c *gin.Context) {
	id, ok := pathID(c, "member")
	if !ok || !s.mayManageAbsence(c, id) {
		return
	}
	var req struct {
		From             *time.Time `json:"from"`
		Until            *time.Time `json:"until"`
		DelegateMemberID string     `json:"delegate_member_id"`
	}
	if !bindJSON(c, &req) {
		return
	}
	a := cs.Absence{DelegateMemberID: req.DelegateMemberID}
	if req.From != nil {
		a.From = *req.From
	}
	if req.Until != nil {
		a.Until = *req.Until
	}
	me := currentMember(c)
	m, old, err := s.Store.SetAbsence(c, me.OrgID, id, store.Actor{MemberID: me.ID, Source: cs.SourceAPI}, a)
	if err != nil {
		s.fail(c, err)
		return
	}
	touched := []string{id, a.DelegateMemberID}
	if old != nil {
		touched = append(touched, old.DelegateMemberID)
	}
	s.posts.DirectoryChanged(c, me.OrgID, store.RefreshScope{MemberIDs: touched}, "an absence was set")
	s.writeMember(c, http.StatusOK, m)
}

func (s *Server) deleteAbsence(c *gin.Context) {
	id, ok := pathID(c, "member")
	if !ok || !s.mayManageAbsence(c, id) {
		return
	}
	me := currentMember(c)
	old, err := s.Store.DeleteAbsence(c, me.OrgID, id, store.Actor{MemberID: me.ID, Source: cs.SourceAPI})
	if err != nil {
		s.fail(c, err)
		return
	}
	s.posts.DirectoryChanged(c, me.OrgID, store.RefreshScope{MemberIDs: []string{id, old.DelegateMemberID}}, "an absence ended")
	c.Status(http.StatusNoContent)
}

// mayManageAbsence: the member themself, or an admin or owner (403 otherwise).
func (s *Server) mayManageAbsence(c *gin.Context, memberID string) bool {
	me := currentMember(c)
	if me.ID == memberID || isAdmin(me) {
		return true
	}
	s.fail(c, cs.Errorf(cs.EFORBIDDEN, "only the member themself or an admin can set or end a member's absence"))
	return false
}
