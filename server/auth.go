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
	user, ok := s.bearerUser(c)
	if !ok {
		return
	}
	c.Set(userKey, user)
	c.Next()
}

// bearerUser returns the user of the request's API token; without a valid
// one it writes a 401 and returns false.
func (s *Server) bearerUser(c *gin.Context) (cs.User, bool) {
	scheme, token, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		c.Header("WWW-Authenticate", `Bearer realm="countersign"`)
		problem(c, http.StatusUnauthorized, cs.EUNAUTHORIZED, "send an API token as Authorization: Bearer <token>", nil)
		return cs.User{}, false
	}
	user, err := s.Store.Authenticate(c, strings.TrimSpace(token))
	if err != nil {
		if cs.ErrorCode(err) == cs.EUNAUTHORIZED {
			c.Header("WWW-Authenticate", `Bearer realm="countersign", error="invalid_token"`)
		}
		s.fail(c, err)
		return cs.User{}, false
	}
	return user, true
}

// currentUser is the authenticated caller.
func currentUser(c *gin.Context) cs.User { return c.MustGet(userKey).(cs.User) }
