package countersign

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // time zones validate the same on every image, with or without zoneinfo
)

// This file holds the org's directory: teams, invitations, social accounts
// and saved approval chains. Members and users are in countersign.go,
// permissions in permission.go, the chain's shape in post.go.

// Error codes of the directory, beyond the generic ones in countersign.go.
const (
	EINVITATIONSDISABLED = "invitations_disabled" // the invitee refuses invitations (409)
	EALREADYMEMBER       = "already_member"       // the e-mail is already an active member (409)
	EINVITATIONEXPIRED   = "invitation_expired"   // the invitation is past its 14 days (410)
	EINVITATIONUSED      = "invitation_used"      // accepted already (410)
	EINVITATIONDECLINED  = "invitation_declined"  // declined by the invitee (410)
	EINVITATIONREVOKED   = "invitation_revoked"   // revoked by an admin (410)
	EINVITATIONREPLACED  = "invitation_replaced"  // a newer invitation to the same e-mail replaced it (410)
	// EINVITATIONNEEDSTOKEN: the invited e-mail belongs to a user, who
	// answers with their own API token (401).
	EINVITATIONNEEDSTOKEN = "invitation_needs_token"
	EINVITATIONMISMATCH   = "invitation_email_mismatch" // the API token's user is not the invitee (403)
	ESLACKIDTAKEN         = "slack_id_taken"            // another member of the org has this Slack id (409)
	ESLACKUNAVAILABLE     = "slack_unavailable"         // Slack did not answer a check (503)
	ELASTOWNER            = "last_owner"                // the org would be left without an owner (409)
	EINUSE                = "in_use"                    // a chain or team still referenced (409)
	EINVALIDCSV           = "invalid_csv"               // an import that is not a CSV we can read (422)
	ETOOMANYROWS          = "too_many_rows"             // an import over MaxImportRows (413)
)

// InvitationTTL is how long an invitation can be answered.
const InvitationTTL = 14 * 24 * time.Hour

// TeamRole is a member's role in a team.
type TeamRole string

const (
	TeamAdmin  TeamRole = "admin"
	TeamMember TeamRole = "member"
)

// Valid reports whether r is a known team role.
func (r TeamRole) Valid() bool { return r == TeamAdmin || r == TeamMember }

// Team is a named group of members of one org.
type Team struct {
	ID             string    `json:"id"`
	OrgID          string    `json:"org_id"`
	Name           string    `json:"name"`
	SlackChannelID string    `json:"slack_channel_id,omitempty"`
	MemberCount    int       `json:"member_count"`
	CreatedAt      time.Time `json:"created_at"`
}

// TeamMembership is one member's place in one team.
type TeamMembership struct {
	TeamID   string    `json:"team_id"`
	TeamName string    `json:"team_name"`
	MemberID string    `json:"member_id"`
	Name     string    `json:"name"`
	Email    string    `json:"email"`
	Role     TeamRole  `json:"role"`
	AddedAt  time.Time `json:"added_at"`
}

// Invitation is an invitation to join an org. Token is set only in the
// answer that created it: the store keeps its hash.
type Invitation struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"org_id"`
	Email     string    `json:"email"`
	Name      string    `json:"name,omitempty"`
	OrgRole   OrgRole   `json:"org_role"`
	Teams     []string  `json:"teams"`
	Token     string    `json:"token,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedAt time.Time `json:"created_at"`
	// OrgName names the org (in the invitee's list and the mail).
	OrgName string `json:"org_name,omitempty"`
	// Inviter is who invited: their name, or e-mail without one ("" when
	// the inviter is gone or was the system).
	Inviter string `json:"inviter,omitempty"`
	// Delivery is the invitation mail's state (DeliveryNone, ...), and
	// DeliveryError the sanitized reason of its last failed attempt. Shown
	// to the org's admins only.
	Delivery         string `json:"delivery,omitempty"`
	DeliveryError    string `json:"delivery_error,omitempty"`
	DeliveryAttempts int    `json:"delivery_attempts,omitempty"`
}

// Delivery states of an invitation mail.
const (
	DeliveryNone   = "none"   // no SMTP configured: the admin got the token to pass on
	DeliveryQueued = "queued" // waiting for its first or next attempt
	DeliverySent   = "sent"   // handed to the SMTP server
	DeliveryFailed = "failed" // every attempt failed; the invitation stays pending
)

// InvitationRequest is what an admin asks for: one invitee.
type InvitationRequest struct {
	Email   string   `json:"email"`
	Name    string   `json:"name"`
	OrgRole OrgRole  `json:"org_role"`
	Teams   []string `json:"teams"` // team names
}

// Accepted is the result of accepting an invitation. APIToken is shown once.
type Accepted struct {
	User     User   `json:"user"`
	Member   Member `json:"member"`
	APIToken string `json:"api_token,omitempty"` // a new user's first token; none for an existing user
}

// Import results, one per CSV data row.
const (
	ImportInvited = "invited"
	ImportSkipped = "skipped"
	ImportError   = "error"
)

// ImportRow is the outcome of one data row of an invitation import. Row is
// the 1-based data row (the header is not counted).
type ImportRow struct {
	Row        int         `json:"row"`
	Line       int         `json:"line"` // line of the file where the row starts
	Email      string      `json:"email"`
	Result     string      `json:"result"`
	Code       string      `json:"code,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	Invitation *Invitation `json:"invitation,omitempty"`
}

// MaxImportRows bounds an invitation import.
const MaxImportRows = 500

// APIToken describes an API token; the token itself is never stored.
type APIToken struct {
	ID         string     `json:"id"`
	Label      string     `json:"label"`
	Token      string     `json:"token,omitempty"` // only when just created
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// Network is the social network of an account.
type Network string

const (
	NetworkMastodon Network = "mastodon"
	NetworkBluesky  Network = "bluesky"
	NetworkX        Network = "x"
	NetworkWebhook  Network = "webhook"
	NetworkLog      Network = "log"
)

// networkSpec names the settings and credentials a network takes (SPEC §5).
type networkSpec struct {
	settings, requiredSettings []string
	credentials, requiredCreds []string
}

var networks = map[Network]networkSpec{
	NetworkMastodon: {
		settings: []string{"instance_url"}, requiredSettings: []string{"instance_url"},
		credentials: []string{"access_token"}, requiredCreds: []string{"access_token"},
	},
	NetworkBluesky: {
		settings:    []string{"pds_url"},
		credentials: []string{"identifier", "app_password"}, requiredCreds: []string{"identifier", "app_password"},
	},
	NetworkX: {
		settings:    []string{"api_url"},
		credentials: []string{"access_token", "refresh_token", "client_id", "client_secret"}, requiredCreds: []string{"access_token"},
	},
	NetworkWebhook: {
		settings: []string{"url"}, requiredSettings: []string{"url"},
		credentials: []string{"secret"}, requiredCreds: []string{"secret"},
	},
	NetworkLog: {},
}

// Valid reports whether n is a known network.
func (n Network) Valid() bool { _, ok := networks[n]; return ok }

// Account is a social account of an org. Its credentials are never part of
// it: they are write-only and only the publisher reads them.
type Account struct {
	ID              string            `json:"id"`
	OrgID           string            `json:"org_id"`
	Network         Network           `json:"network"`
	Handle          string            `json:"handle"`
	DisplayName     string            `json:"display_name"`
	Timezone        string            `json:"timezone"`
	Settings        map[string]string `json:"settings"`
	HasCredentials  bool              `json:"has_credentials"`
	ApprovalChainID *string           `json:"approval_chain_id"`
	CreatedAt       time.Time         `json:"created_at"`
	UpdatedAt       time.Time         `json:"updated_at"`
}

// ValidateAccount checks an account as it will be saved: network, handle,
// time zone (IANA), and the settings and credentials its network takes.
// credentials is nil when they are not being changed. Messages never repeat a
// credential's value.
func ValidateAccount(network Network, handle, timezone string, settings, credentials map[string]string) []FieldError {
	var fields []FieldError
	add := func(field, format string, args ...any) {
		fields = append(fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	spec, ok := networks[network]
	if !ok {
		add("network", "network must be mastodon, bluesky, x, webhook or log")
	}
	if strings.TrimSpace(handle) == "" {
		add("handle", "is required")
	} else if len(handle) > 200 {
		add("handle", "is longer than 200 characters")
	}
	if timezone == "" || timezone == "Local" {
		add("timezone", "an IANA time zone is required, e.g. Europe/Paris")
	} else if _, err := time.LoadLocation(timezone); err != nil {
		add("timezone", "unknown time zone %q: use an IANA name such as Europe/Paris", timezone)
	}
	if !ok {
		return fields
	}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		if !slices.Contains(spec.settings, k) {
			add("settings."+k, "is not a setting of %s accounts (known: %s)", network, list(spec.settings))
			continue
		}
		if msg := CheckBaseURL(settings[k]); msg != "" {
			add("settings."+k, "%s", msg)
		}
	}
	for _, k := range spec.requiredSettings {
		if _, ok := settings[k]; !ok {
			add("settings."+k, "is required for %s accounts", network)
		}
	}
	if credentials == nil {
		return fields
	}
	for _, k := range slices.Sorted(maps.Keys(credentials)) {
		switch {
		case !slices.Contains(spec.credentials, k):
			add("credentials."+k, "is not a credential of %s accounts (known: %s)", network, list(spec.credentials))
		case strings.TrimSpace(credentials[k]) == "":
			add("credentials."+k, "is empty")
		case network == NetworkWebhook && k == "secret" && !strings.HasPrefix(credentials[k], "whsec_"):
			add("credentials.secret", "must be a Standard Webhooks secret starting with whsec_")
		}
	}
	for _, k := range spec.requiredCreds {
		if _, ok := credentials[k]; !ok {
			add("credentials."+k, "is required for %s accounts", network)
		}
	}
	// X renews an expired access token with the refresh token, which needs
	// the app's client id (and, for a confidential client, its secret).
	if _, ok := credentials["refresh_token"]; ok && network == NetworkX {
		if _, ok := credentials["client_id"]; !ok {
			add("credentials.client_id", "is required with refresh_token (the OAuth 2.0 client id of your X app)")
		}
	}
	return fields
}

// NeedsCredentials reports whether accounts of network n must have credentials.
func (n Network) NeedsCredentials() bool { return len(networks[n].requiredCreds) > 0 }

// ApprovalChain is a chain as the org saved it.
type ApprovalChain struct {
	Chain
	OrgID     string    `json:"org_id"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Page selects a slice of a list ordered by id: at most Limit items whose id
// is greater than After ("" for the first page).
type Page struct {
	After string
	Limit int
}
