package server

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// Accounts: any member reads them (never their credentials); admins and
// owners create, change and delete them; members who manage an account
// (advanced, custom manage) set its grants and pick its chain.

func (s *Server) listAccounts(c *gin.Context) {
	org := currentMember(c).OrgID
	listPage(s, c, func(p cs.Page) ([]cs.Account, error) { return s.Store.ListAccounts(c, org, p) },
		func(a cs.Account) string { return a.ID })
}

func (s *Server) getAccount(c *gin.Context) {
	id, ok := pathID(c, "account")
	if !ok {
		return
	}
	a, err := s.Store.Account(c, currentMember(c).OrgID, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

func (s *Server) createAccount(c *gin.Context) {
	var req struct {
		Network     cs.Network        `json:"network"`
		Handle      string            `json:"handle"`
		DisplayName string            `json:"display_name"`
		Timezone    string            `json:"timezone"`
		Settings    map[string]string `json:"settings"`
		Credentials map[string]string `json:"credentials"`
	}
	if !s.requireAdmin(c, "add accounts") || !bindJSON(c, &req) {
		return
	}
	a, err := s.Store.CreateAccount(c, currentMember(c).OrgID, store.NewAccount(req))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, a)
}

func (s *Server) updateAccount(c *gin.Context) {
	id, ok := pathID(c, "account")
	var req struct {
		Handle          *string           `json:"handle"`
		DisplayName     *string           `json:"display_name"`
		Timezone        *string           `json:"timezone"`
		Settings        map[string]string `json:"settings"`
		Credentials     map[string]string `json:"credentials"`
		ApprovalChainID json.RawMessage   `json:"approval_chain_id"`
	}
	if !ok || !bindJSON(c, &req) {
		return
	}
	u := store.AccountUpdate{Handle: req.Handle, DisplayName: req.DisplayName, Timezone: req.Timezone,
		Settings: req.Settings, Credentials: req.Credentials}
	if len(req.ApprovalChainID) > 0 {
		u.SetChain = true
		if !bytes.Equal(req.ApprovalChainID, []byte("null")) {
			if err := json.Unmarshal(req.ApprovalChainID, &u.ChainID); err != nil || u.ChainID == "" {
				s.fail(c, &cs.Error{Code: cs.EINVALID, Message: "invalid account", Fields: []cs.FieldError{
					{Field: "approval_chain_id", Message: "must be a chain id, or null for the default rule"}}})
				return
			}
		}
	}
	org := currentMember(c).OrgID
	settingsChange := req.Handle != nil || req.DisplayName != nil || req.Timezone != nil || req.Settings != nil || req.Credentials != nil
	if !isAdmin(currentMember(c)) {
		if settingsChange {
			s.fail(c, cs.Errorf(cs.EFORBIDDEN, "only admins and owners change an account's settings and credentials; members who manage it may set approval_chain_id"))
			return
		}
		if !s.requireManage(c, org, id, "pick the account's approval chain") {
			return
		}
	}
	a, err := s.Store.UpdateAccount(c, org, id, u)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

func (s *Server) deleteAccount(c *gin.Context) {
	id, ok := pathID(c, "account")
	if !ok || !s.requireAdmin(c, "delete accounts") {
		return
	}
	if err := s.Store.DeleteAccount(c, currentMember(c).OrgID, id); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) writeGrants(c *gin.Context, grants []cs.Grant) {
	if grants == nil {
		grants = []cs.Grant{}
	}
	c.JSON(http.StatusOK, gin.H{"grants": grants})
}

func (s *Server) getPermissions(c *gin.Context) {
	id, ok := pathID(c, "account")
	org := currentMember(c).OrgID
	if !ok || !s.requireManage(c, org, id, "see the account's grants") {
		return
	}
	grants, err := s.Store.Grants(c, org, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeGrants(c, grants)
}

func (s *Server) putPermissions(c *gin.Context) {
	id, ok := pathID(c, "account")
	var req struct {
		Grants []cs.Grant `json:"grants"`
	}
	org := currentMember(c).OrgID
	if !ok || !bindJSON(c, &req) || !s.requireManage(c, org, id, "change the account's grants") {
		return
	}
	if req.Grants == nil {
		s.fail(c, &cs.Error{Code: cs.EINVALID, Message: "invalid grants", Fields: []cs.FieldError{
			{Field: "grants", Message: "is required: the list of every grant of the account ([] removes them all)"}}})
		return
	}
	grants, err := s.Store.ReplaceGrants(c, org, id, currentMember(c).ID, req.Grants)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.posts.DirectoryChanged(c, org, store.RefreshScope{AccountID: id}, "the account's grants changed")
	s.writeGrants(c, grants)
}
