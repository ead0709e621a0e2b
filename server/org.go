package server

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

const memberKey = "countersign.member"

// orgMember resolves :org to the caller's active member in it, read fresh
// on every request (a removal counts on the very next one). An org the caller
// is not in is 404, whether it exists or not.
func (s *Server) orgMember(c *gin.Context) {
	orgID, ok := pathID(c, "org")
	if !ok {
		return
	}
	m, err := s.Store.MemberOfUser(c, orgID, currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(memberKey, m)
	// Audited changes name the caller (store.WithActor).
	c.Request = c.Request.WithContext(store.WithActor(c.Request.Context(), store.Actor{MemberID: m.ID, Source: cs.SourceAPI}))
	c.Next()
}

// currentMember is the caller as a member of the org in the path.
func currentMember(c *gin.Context) cs.Member { return c.MustGet(memberKey).(cs.Member) }

// pathID reads a UUID path parameter in canonical form; anything else is a
// 400 before the database is asked.
func pathID(c *gin.Context, name string) (string, bool) {
	u, err := uuid.Parse(c.Param(name))
	if err != nil {
		problem(c, http.StatusBadRequest, "invalid_id", "the "+name+" id in the path is not a UUID",
			[]cs.FieldError{{Field: name, Message: "must be a UUID"}})
		return "", false
	}
	return u.String(), true
}

func isAdmin(m cs.Member) bool { return m.OrgRole == cs.RoleOwner || m.OrgRole == cs.RoleAdmin }

// requireAdmin answers 403 unless the caller is an admin or owner of the org.
func (s *Server) requireAdmin(c *gin.Context, action string) bool {
	if isAdmin(currentMember(c)) {
		return true
	}
	s.fail(c, cs.Errorf(cs.EFORBIDDEN, "only admins and owners of the organization can %s", action))
	return false
}

// requireManage answers 403 unless the caller may manage the account's
// grants and chain (advanced, custom manage, or admin); 404 for an account
// the org does not have.
func (s *Server) requireManage(c *gin.Context, orgID, accountID, action string) bool {
	r, err := s.Store.EffectiveRight(c, orgID, accountID, currentMember(c).ID)
	if err != nil {
		s.fail(c, err)
		return false
	}
	if !r.Manage {
		s.fail(c, cs.Errorf(cs.EFORBIDDEN, "only members with the advanced level (or custom manage) on this account, admins and owners can %s", action))
		return false
	}
	return true
}

// Lists: ?limit (1..200, default 50) and ?cursor (opaque, from next_cursor).
const (
	defaultLimit = 50
	maxLimit     = 200
)

// listPage answers a list with one page of items and the cursor of the next
// page (null on the last one).
func listPage[T any](s *Server, c *gin.Context, fetch func(cs.Page) ([]T, error), id func(T) string) {
	var fields []cs.FieldError
	p := cs.Page{Limit: defaultLimit}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			fields = append(fields, cs.FieldError{Field: "limit", Message: "must be an integer from 1 to 200"})
		}
		p.Limit = n
	}
	if v := c.Query("cursor"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		u, err2 := uuid.ParseBytes(raw)
		if err != nil || err2 != nil {
			fields = append(fields, cs.FieldError{Field: "cursor", Message: "is not a cursor from a previous page"})
		}
		p.After = u.String()
	}
	if len(fields) > 0 {
		problem(c, http.StatusBadRequest, "invalid_query", "invalid list parameters", fields)
		return
	}
	want := p.Limit
	p.Limit++ // one more tells whether there is a next page
	items, err := fetch(p)
	if err != nil {
		s.fail(c, err)
		return
	}
	var next *string
	if len(items) > want {
		items = items[:want]
		cur := base64.RawURLEncoding.EncodeToString([]byte(id(items[want-1])))
		next = &cur
	}
	if items == nil {
		items = []T{}
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "next_cursor": next})
}

// bindOptionalJSON is bindJSON for bodies that may be left out entirely.
func bindOptionalJSON(c *gin.Context, v any) bool {
	if c.Request.ContentLength == 0 {
		return true
	}
	return bindJSON(c, v)
}
