// Package countersign holds the domain types and errors shared by every layer:
// the store, the HTTP server, the workflows and their activities. It does no I/O.
package countersign

import (
	"errors"
	"fmt"
	"time"
)

// TaskQueue is the Temporal task queue every Countersign worker polls.
const TaskQueue = "countersign"

// OrgRole is a member's role in an organization.
type OrgRole string

const (
	RoleOwner  OrgRole = "owner"
	RoleAdmin  OrgRole = "admin"
	RoleMember OrgRole = "member"
)

// Valid reports whether r is one of the known roles.
func (r OrgRole) Valid() bool {
	return r == RoleOwner || r == RoleAdmin || r == RoleMember
}

// User is a person, global across organizations, identified by e-mail.
type User struct {
	ID               string    `json:"id"`
	Email            string    `json:"email"`
	Name             string    `json:"name"`
	AllowInvitations bool      `json:"allow_invitations"`
	CreatedAt        time.Time `json:"created_at"`
}

// Org is an organization: it owns members, teams, accounts, chains and posts.
type Org struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Member is a user inside one organization.
type Member struct {
	ID          string  `json:"id"`
	OrgID       string  `json:"org_id"`
	UserID      string  `json:"user_id"`
	Email       string  `json:"email"`
	Name        string  `json:"name"`
	OrgRole     OrgRole `json:"org_role"`
	SlackUserID string  `json:"slack_user_id,omitempty"`
	// Absence is the member's current or next absence, if any (SPEC §2).
	Absence   *Absence  `json:"absence,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Absence is a member's time away (SPEC §2 Member): from From until Until,
// every open or opening step that awaits them also accepts
// DelegateMemberID, an active member of the same org.
type Absence struct {
	From             time.Time `json:"from"`
	Until            time.Time `json:"until"`
	DelegateMemberID string    `json:"delegate_member_id"`
}

// Membership is a member seen from its user: the member and its org's name.
type Membership struct {
	Member
	OrgName string `json:"org_name"`
}

// Error codes are stable strings clients can switch on; the HTTP layer maps
// each to a status.
const (
	ECONFLICT     = "conflict"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
)

// FieldError names one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is a domain error that is safe to show to the client: Message never
// carries secrets or internal details.
type Error struct {
	Code    string
	Message string
	Fields  []FieldError
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, else EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}
