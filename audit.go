package countersign

import (
	"encoding/json"
	"time"
)

// AuditEntry is one row of an org's audit log (SPEC §2 "Org audit log"):
// who changed what, through which source, with the changed fields before
// and after. Secrets never appear: a replaced credential is recorded as
// {"credentials": "replaced"}.
type AuditEntry struct {
	ID         string          `json:"id"`
	ActorID    string          `json:"actor_member_id,omitempty"` // empty for the system
	Actor      string          `json:"actor,omitempty"`           // the actor's name, or e-mail
	Source     string          `json:"source"`
	ObjectType string          `json:"object_type"`
	ObjectID   string          `json:"object_id"`
	Action     string          `json:"action"`
	Before     json.RawMessage `json:"before"`
	After      json.RawMessage `json:"after"`
	CreatedAt  time.Time       `json:"created_at"`
}

// AuditFilter narrows an audit log listing: by the actor's member id, and
// by object, as "type" (e.g. "member") or "type:id".
type AuditFilter struct {
	ActorID    string
	ObjectType string
	ObjectID   string
}
