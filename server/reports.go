package server

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
)

// Report bounds (docs/operating.md, "Turnaround report").
const (
	// maxReportRange is the longest range a report covers.
	maxReportRange = 366 * 24 * time.Hour
	// defaultReportRange is the range when from is left out.
	defaultReportRange = 30 * 24 * time.Hour
)

// approvalReport answers GET /v1/orgs/{org}/reports/approvals?from=&to=
// (admins and owners: it spans every account of the org): per step and per
// approver, decisions, median and p90 time to decide, timeouts, fallbacks,
// expiries and rejections, over [from, to). to defaults to now, from to 30
// days before to; both are RFC 3339 with an offset.
func (s *Server) approvalReport(c *gin.Context) {
	if !s.requireAdmin(c, "read the approvals report") {
		return
	}
	var fields []cs.FieldError
	bound := func(name string) *time.Time {
		v, ok := c.GetQuery(name)
		if !ok {
			return nil
		}
		t, ferr := parseTime(name, &v)
		if ferr != nil {
			fields = append(fields, *ferr)
		}
		return t
	}
	from, to := bound("from"), bound("to")
	if len(fields) == 0 {
		if to == nil {
			now := time.Now()
			to = &now
		}
		if from == nil {
			f := to.Add(-defaultReportRange)
			from = &f
		}
		switch {
		case !from.Before(*to):
			fields = append(fields, cs.FieldError{Field: "from", Message: "must be before to"})
		case to.Sub(*from) > maxReportRange:
			fields = append(fields, cs.FieldError{Field: "to", Message: "the range is at most 366 days"})
		}
	}
	if len(fields) > 0 {
		s.fail(c, &cs.Error{Code: cs.EINVALID, Message: "invalid report range", Fields: fields})
		return
	}
	r, err := s.Store.ApprovalReport(c, currentMember(c).OrgID, from.UTC(), to.UTC())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}
