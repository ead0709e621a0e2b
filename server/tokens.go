package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// The caller's own settings and API tokens.

// updateMe answers PATCH /v1/me: name and allow_invitations.
func (s *Server) updateMe(c *gin.Context) {
	var req struct {
		Name             *string `json:"name"`
		AllowInvitations *bool   `json:"allow_invitations"`
	}
	if !bindJSON(c, &req) {
		return
	}
	u, err := s.Store.UpdateUser(c, currentUser(c).ID, store.UserUpdate(req))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

func (s *Server) listTokens(c *gin.Context) {
	tokens, err := s.Store.ListAPITokens(c, currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	if tokens == nil {
		tokens = []cs.APIToken{}
	}
	c.JSON(http.StatusOK, gin.H{"items": tokens})
}

func (s *Server) createToken(c *gin.Context) {
	var req struct {
		Label string `json:"label"`
	}
	if !bindOptionalJSON(c, &req) {
		return
	}
	t, err := s.Store.CreateAPIToken(c, currentUser(c).ID, req.Label)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, t)
}

func (s *Server) revokeToken(c *gin.Context) {
	id, ok := pathID(c, "token")
	if !ok {
		return
	}
	if err := s.Store.RevokeAPIToken(c, currentUser(c).ID, id); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
