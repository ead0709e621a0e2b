package server

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// me answers GET /v1/me: the caller and their memberships.
func (s *Server) me(c *gin.Context) {
	user := currentUser(c)
	ms, err := s.Store.Memberships(c, user.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"user": user, "memberships": ms})
}
