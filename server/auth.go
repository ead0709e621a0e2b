package server

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
)

const userKey = "countersign.user"

// authenticate requires "Authorization: Bearer <API token>" and puts the
// token's user on the context.
func (s *Server) authenticate(c *gin.Context) {
	scheme, token, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		c.Header("WWW-Authenticate", `Bearer realm="countersign"`)
		problem(c, http.StatusUnauthorized, cs.EUNAUTHORIZED, "send an API token as Authorization: Bearer <token>", nil)
		return
	}
	user, err := s.Store.Authenticate(c, strings.TrimSpace(token))
	if err != nil {
		if cs.ErrorCode(err) == cs.EUNAUTHORIZED {
			c.Header("WWW-Authenticate", `Bearer realm="countersign", error="invalid_token"`)
		}
		s.fail(c, err)
		return
	}
	c.Set(userKey, user)
	c.Next()
}

// currentUser is the authenticated caller.
func currentUser(c *gin.Context) cs.User { return c.MustGet(userKey).(cs.User) }
