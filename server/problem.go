package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// Problem is an RFC 9457 problem document with Countersign's stable code.
type Problem struct {
	Type   string          `json:"type"`
	Title  string          `json:"title"`
	Status int             `json:"status"`
	Detail string          `json:"detail,omitempty"`
	Code   string          `json:"code"`
	Errors []cs.FieldError `json:"errors,omitempty"`
}

func problem(c *gin.Context, status int, code, detail string, fields []cs.FieldError) {
	c.Header("Content-Type", "application/problem+json")
	c.Header("Cache-Control", "no-store")
	c.AbortWithStatusJSON(status, Problem{
		Type:   "about:blank",
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
		Errors: fields,
	})
}

// statusOf maps domain error codes to HTTP statuses.
var statusOf = map[string]int{
	cs.EINVALID:      http.StatusUnprocessableEntity,
	cs.ENOTFOUND:     http.StatusNotFound,
	cs.ECONFLICT:     http.StatusConflict,
	cs.EUNAUTHORIZED: http.StatusUnauthorized,
	cs.EFORBIDDEN:    http.StatusForbidden,

	cs.EINVITATIONSDISABLED: http.StatusConflict,
	cs.EALREADYMEMBER:       http.StatusConflict,
	cs.EINVITATIONEXPIRED:   http.StatusGone,
	cs.EINVITATIONANSWERED:  http.StatusConflict,
	cs.ELASTOWNER:           http.StatusConflict,
	cs.EINUSE:               http.StatusConflict,
	cs.EINVALIDCSV:          http.StatusUnprocessableEntity,
	cs.ETOOMANYROWS:         http.StatusRequestEntityTooLarge,
}

// fail writes err as a problem. Domain errors keep their message; anything
// else is logged and answered with a bare 500 that leaks nothing.
func (s *Server) fail(c *gin.Context, err error) {
	var e *cs.Error
	if errors.As(err, &e) {
		status, ok := statusOf[e.Code]
		if !ok {
			status = http.StatusBadRequest
		}
		problem(c, status, e.Code, e.Message, e.Fields)
		return
	}
	if store.Unavailable(err) {
		s.Logger.Warn("database unavailable", "route", c.FullPath(), "error", err)
		c.Header("Retry-After", "5")
		problem(c, http.StatusServiceUnavailable, "database_unavailable", "the database does not answer; retry in a moment", nil)
		return
	}
	s.Logger.Error("request failed", "route", c.FullPath(), "error", err)
	problem(c, http.StatusInternalServerError, cs.EINTERNAL, "internal error", nil)
}

// bindJSON decodes the body strictly (one JSON object, no unknown fields)
// into v; on failure it writes a 4xx problem and returns false.
func bindJSON(c *gin.Context, v any) bool {
	if ct := c.ContentType(); ct != "" && ct != "application/json" {
		problem(c, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json", nil)
		return false
	}
	body, err := io.ReadAll(c.Request.Body)
	if err == nil && bytes.Contains(body, []byte(`\u0000`)) && hasNUL(body) {
		// PostgreSQL cannot store U+0000 in text: refuse it here, before it
		// reaches the database or a workflow signal.
		problem(c, http.StatusUnprocessableEntity, cs.EINVALID, "text cannot contain the NUL character (U+0000)", nil)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err == nil {
		err = dec.Decode(v)
	}
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		return true
	}
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		problem(c, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is larger than %d bytes", maxErr.Limit), nil)
	case errors.Is(err, io.EOF):
		problem(c, http.StatusBadRequest, "invalid_json", "the body is empty; send a JSON object", nil)
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		problem(c, http.StatusBadRequest, "invalid_json", "the body is not valid JSON: "+err.Error(), nil)
	case errors.As(err, &typeErr):
		problem(c, http.StatusUnprocessableEntity, cs.EINVALID, "a field has the wrong type",
			[]cs.FieldError{{Field: typeErr.Field, Message: "must be a " + typeErr.Type.String()}})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		problem(c, http.StatusUnprocessableEntity, "unknown_field", "unknown field "+field,
			[]cs.FieldError{{Field: field, Message: "is not a known field"}})
	default:
		problem(c, http.StatusBadRequest, "invalid_json", err.Error(), nil)
	}
	return false
}

// hasNUL reports whether any string (or key) in the JSON document holds
// U+0000.
func hasNUL(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if str, ok := tok.(string); ok && strings.ContainsRune(str, 0) {
			return true
		}
	}
}
