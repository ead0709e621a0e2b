package server

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	cs "github.com/countersign/countersign"
)

// orgAudit answers GET /v1/orgs/{org}/audit (admins and owners): the org
// audit log, newest first, filtered by actor (a member id) and object
// ("member", or "member:<id>").
func (s *Server) orgAudit(c *gin.Context) {
	if !s.requireAdmin(c, "read the audit log") {
		return
	}
	var f cs.AuditFilter
	var fields []cs.FieldError
	if v := c.Query("actor"); v != "" {
		u, err := uuid.Parse(v)
		if err != nil {
			fields = append(fields, cs.FieldError{Field: "actor", Message: "must be a member id (UUID)"})
		}
		f.ActorID = u.String()
	}
	if v := c.Query("object"); v != "" {
		typ, id, _ := strings.Cut(v, ":")
		if typ == "" || len(v) > 200 {
			fields = append(fields, cs.FieldError{Field: "object", Message: `must be an object type ("member") or type:id ("member:<id>")`})
		}
		f.ObjectType, f.ObjectID = typ, id
	}
	if len(fields) > 0 {
		problem(c, http.StatusBadRequest, "invalid_query", "invalid audit log filter", fields)
		return
	}
	org := currentMember(c).OrgID
	listPage(s, c, func(p cs.Page) ([]cs.AuditEntry, error) { return s.Store.ListAudit(c, org, f, p) },
		func(e cs.AuditEntry) string { return e.ID })
}
