package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/media"
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

// statusOf maps domain error codes to HTTP statuses: the one place they map.
var statusOf = map[string]int{
	cs.EINVALID:      http.StatusUnprocessableEntity,
	cs.ENOTFOUND:     http.StatusNotFound,
	cs.ECONFLICT:     http.StatusConflict,
	cs.EUNAUTHORIZED: http.StatusUnauthorized,
	cs.EFORBIDDEN:    http.StatusForbidden,

	cs.EINVITATIONSDISABLED:  http.StatusConflict,
	cs.EALREADYMEMBER:        http.StatusConflict,
	cs.EINVITATIONEXPIRED:    http.StatusGone,
	cs.EINVITATIONUSED:       http.StatusGone,
	cs.EINVITATIONDECLINED:   http.StatusGone,
	cs.EINVITATIONREVOKED:    http.StatusGone,
	cs.EINVITATIONREPLACED:   http.StatusGone,
	cs.EINVITATIONNEEDSTOKEN: http.StatusUnauthorized,
	cs.EINVITATIONMISMATCH:   http.StatusForbidden,
	cs.ESLACKIDTAKEN:         http.StatusConflict,
	cs.ESLACKUNAVAILABLE:     http.StatusServiceUnavailable,
	cs.ELASTOWNER:            http.StatusConflict,
	cs.EINUSE:                http.StatusConflict,
	cs.EINVALIDCSV:           http.StatusUnprocessableEntity,
	cs.ETOOMANYROWS:          http.StatusRequestEntityTooLarge,
	cs.EGRANTABOVEOWNRIGHT:   http.StatusForbidden,
	cs.EOWNGRANT:             http.StatusForbidden,

	// The reasons a post's workflow (or the posts service) gives for
	// refusing a decision or change (SPEC §3 item 4).
	cs.ReasonAuthor:            http.StatusForbidden,
	cs.ReasonRevisionWriter:    http.StatusForbidden,
	cs.ReasonDistinctApprovers: http.StatusForbidden,
	cs.ReasonNotAuthorized:     http.StatusForbidden,
	cs.ReasonNotAwaited:        http.StatusForbidden,
	cs.ReasonNotDelegate:       http.StatusForbidden,
	cs.ReasonCannotCompose:     http.StatusForbidden,
	cs.ReasonUnsigned:          http.StatusForbidden,
	cs.ReasonNotWaiting:        http.StatusConflict,
	cs.ReasonStaleRevision:     http.StatusConflict,
	cs.ReasonWrongStep:         http.StatusConflict,
	cs.ReasonDuplicateRequest:  http.StatusConflict,
	cs.ReasonAlreadyDecided:    http.StatusConflict,
	cs.ReasonUnchanged:         http.StatusConflict,
	cs.ReasonTooLate:           http.StatusConflict,
	cs.ReasonNoteRequired:      http.StatusUnprocessableEntity,
	cs.ReasonInvalidDecision:   http.StatusUnprocessableEntity,
	cs.ReasonRateLimited:       http.StatusTooManyRequests,
	cs.ReasonAuthorizeFailed:   http.StatusServiceUnavailable,
	store.EIDEMPOTENCYREUSED:   http.StatusUnprocessableEntity,

	media.CodeTooLarge:    http.StatusRequestEntityTooLarge,
	media.CodeUnsupported: http.StatusUnsupportedMediaType,
	media.CodeDimensions:  http.StatusUnprocessableEntity,
	media.CodeCorrupt:     http.StatusUnprocessableEntity,
	media.CodeNetworkRule: http.StatusUnprocessableEntity,
	media.CodeURLExpired:  http.StatusForbidden,
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
		field := jsonPathAt(body, typeErr.Offset)
		if field == "" {
			field = "body"
		}
		problem(c, http.StatusUnprocessableEntity, cs.EINVALID, "a field has the wrong type",
			[]cs.FieldError{{Field: field, Message: fmt.Sprintf("must be %s, not %s", jsonKind(typeErr.Type), typeErr.Value)}})
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

// jsonKind names a Go type the way a client writing JSON thinks of it.
func jsonKind(t reflect.Type) string {
	if t == reflect.TypeFor[time.Time]() {
		return "an RFC 3339 time string"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return jsonKind(t.Elem())
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a " + t.String()
}

// jsonPathAt returns the path ("steps[1].quorum") of the JSON value that
// ends at or after offset in body; "" for the whole body. encoding/json names
// a type mismatch by Go field path without array indexes, so the client would
// not know which step was wrong.
func jsonPathAt(body []byte, offset int64) string {
	type frame struct {
		array   bool
		index   int
		key     string
		wantKey bool
	}
	var stack []frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.array {
				fmt.Fprintf(&b, "[%d]", f.index)
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		}
		return b.String()
	}
	done := func() { // a value of the innermost container ended
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].wantKey = true
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return path()
		}
		n := len(stack)
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:n-1]
			done()
			continue
		}
		if n > 0 && stack[n-1].wantKey {
			stack[n-1].key, _ = tok.(string)
			stack[n-1].wantKey = false
			continue
		}
		if dec.InputOffset() >= offset {
			return path()
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{wantKey: true})
		case json.Delim('['):
			stack = append(stack, frame{array: true})
		default:
			done()
		}
	}
}
