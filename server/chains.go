package server

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
)

// Approval chains: any member reads them; admins and owners write them.

// chainRequest is a chain as clients send it. Durations are read as strings
// here (not by cs.Duration) so that a bad one is a 422 naming its field, and
// the defaults that a zero value cannot express (distinct_approvers true, an
// explicit quorum of 0 refused) are applied.
type chainRequest struct {
	Name                  string        `json:"name"`
	Steps                 []stepRequest `json:"steps"`
	RequireApprovalForAll bool          `json:"require_approval_for_all"`
	LatePolicy            cs.LatePolicy `json:"late_policy"`
	DistinctApprovers     *bool         `json:"distinct_approvers"`
}

type stepRequest struct {
	Approver        cs.Approver `json:"approver"`
	Quorum          *int        `json:"quorum"`
	Timeout         string      `json:"timeout"`
	FallbackTeam    string      `json:"fallback_team"`
	FallbackTimeout string      `json:"fallback_timeout"`
}

func (r chainRequest) chain() (cs.Chain, []cs.FieldError) {
	var fields []cs.FieldError
	c := cs.Chain{Name: r.Name, RequireApprovalForAll: r.RequireApprovalForAll, LatePolicy: r.LatePolicy, DistinctApprovers: true}
	if r.DistinctApprovers != nil {
		c.DistinctApprovers = *r.DistinctApprovers
	}
	duration := func(field, s string) cs.Duration {
		if s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			fields = append(fields, cs.FieldError{Field: field, Message: fmt.Sprintf("%q is not a duration such as \"4h\" or \"30m\"", s)})
		}
		return cs.Duration(d)
	}
	for i, st := range r.Steps {
		p := fmt.Sprintf("steps[%d].", i)
		step := cs.ChainStep{
			Approver:        st.Approver,
			Quorum:          1,
			Timeout:         duration(p+"timeout", st.Timeout),
			FallbackTeam:    st.FallbackTeam,
			FallbackTimeout: duration(p+"fallback_timeout", st.FallbackTimeout),
		}
		if st.Quorum != nil {
			step.Quorum = *st.Quorum
			if step.Quorum < 1 {
				fields = append(fields, cs.FieldError{Field: p + "quorum", Message: "quorum must be at least 1"})
			}
		}
		c.Steps = append(c.Steps, step)
	}
	return c, fields
}

func (s *Server) bindChain(c *gin.Context) (cs.Chain, bool) {
	var req chainRequest
	if !bindJSON(c, &req) {
		return cs.Chain{}, false
	}
	chain, fields := req.chain()
	if len(fields) > 0 {
		s.fail(c, &cs.Error{Code: cs.EINVALID, Message: "invalid approval chain", Fields: fields})
		return cs.Chain{}, false
	}
	return chain, true
}

func (s *Server) listChains(c *gin.Context) {
	org := currentMember(c).OrgID
	listPage(s, c, func(p cs.Page) ([]cs.ApprovalChain, error) { return s.Store.ListChains(c, org, p) },
		func(ch cs.ApprovalChain) string { return ch.ID })
}

func (s *Server) getChain(c *gin.Context) {
	id, ok := pathID(c, "chain")
	if !ok {
		return
	}
	ch, err := s.Store.Chain(c, currentMember(c).OrgID, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, ch)
}

func (s *Server) createChain(c *gin.Context) {
	if !s.requireAdmin(c, "create approval chains") {
		return
	}
	chain, ok := s.bindChain(c)
	if !ok {
		return
	}
	ch, err := s.Store.CreateChain(c, currentMember(c).OrgID, chain)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, ch)
}

func (s *Server) replaceChain(c *gin.Context) {
	id, ok := pathID(c, "chain")
	if !ok || !s.requireAdmin(c, "change approval chains") {
		return
	}
	chain, ok := s.bindChain(c)
	if !ok {
		return
	}
	ch, err := s.Store.UpdateChain(c, currentMember(c).OrgID, id, chain)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, ch)
}

func (s *Server) deleteChain(c *gin.Context) {
	id, ok := pathID(c, "chain")
	if !ok || !s.requireAdmin(c, "delete approval chains") {
		return
	}
	if err := s.Store.DeleteChain(c, currentMember(c).OrgID, id); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
