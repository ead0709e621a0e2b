package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/egress"
	"github.com/countersign/countersign/internal/secrets"
)

// SetSecretKey gives the store the 32-byte COUNTERSIGN_SECRET_KEY that seals
// account credentials. Without it, accounts without credentials still work
// but saving or reading credentials fails.
func (s *Store) SetSecretKey(key []byte) error {
	box, err := secrets.NewBox(key)
	if err != nil {
		return err
	}
	s.box = box
	return nil
}

var errNoSecretKey = errors.New("account credentials need COUNTERSIGN_SECRET_KEY, which is not configured")

const accountColumns = `a.id, a.org_id, a.network, a.handle, a.display_name, a.timezone, a.settings,
	a.credentials IS NOT NULL, a.approval_chain_id, a.created_at, a.updated_at`

func scanAccount(r pgx.Row) (cs.Account, error) {
	var a cs.Account
	err := r.Scan(&a.ID, &a.OrgID, &a.Network, &a.Handle, &a.DisplayName, &a.Timezone, &a.Settings,
		&a.HasCredentials, &a.ApprovalChainID, &a.CreatedAt, &a.UpdatedAt)
	if a.Settings == nil {
		a.Settings = map[string]string{}
	}
	return a, err
}

// SetEgress gives the store the operator's allow-list (COUNTERSIGN_EGRESS_ALLOW),
// against which account URLs are checked when saved. Without it, plain http
// and address literals outside public space are refused.
func (s *Store) SetEgress(g *egress.Guard) { s.egress = g }

// credentialsScheme is how credentials are sealed now: scheme 2 binds them
// to the account id, the network and the canonical URL they are sent to.
// Scheme 1 (the account id only) is only ever opened to re-seal it
// (ResealCredentials).
const credentialsScheme = 2

// ErrCredentialsDoNotOpen is an account's credentials failing to open as the
// account is now: sealed for another account, network or URL (a row edited
// behind the API), or under another key. Publishing it is final.
var ErrCredentialsDoNotOpen = errors.New("the account's credentials do not open for its current network URL " +
	"(changed outside the API?) or with the configured COUNTERSIGN_SECRET_KEY: an admin must enter them again")

// credentialsContext is the AEAD's associated data for an account's
// credentials: where they may go.
func credentialsContext(accountID string, network cs.Network, settings map[string]string) []byte {
	return []byte("countersign/account-credentials/v2\x00" + accountID + "\x00" + string(network) + "\x00" +
		cs.DestinationURL(network, settings))
}

// legacyContext is scheme 1's associated data.
func legacyContext(accountID string) []byte { return []byte("account:" + accountID) }

// seal encrypts credentials bound to the account and its destination; nil
// for none.
func (s *Store) seal(accountID string, network cs.Network, settings map[string]string, creds map[string]string) ([]byte, error) {
	if len(creds) == 0 {
		return nil, nil
	}
	if s.box == nil {
		return nil, errNoSecretKey
	}
	plain, err := json.Marshal(creds)
	if err != nil {
		return nil, err
	}
	return s.box.Seal(plain, credentialsContext(accountID, network, settings)), nil
}

// openCredentials opens an account's sealed credentials (nil: none) as the
// account is now.
func (s *Store) openCredentials(accountID string, network cs.Network, settings map[string]string, scheme int, sealed []byte) (map[string]string, error) {
	creds := map[string]string{}
	if sealed == nil {
		return creds, nil
	}
	if s.box == nil {
		return nil, errNoSecretKey
	}
	if scheme != credentialsScheme {
		return nil, fmt.Errorf("account %s: %w", accountID, ErrCredentialsDoNotOpen)
	}
	plain, err := s.box.Open(sealed, credentialsContext(accountID, network, settings))
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", accountID, ErrCredentialsDoNotOpen)
	}
	if err := json.Unmarshal(plain, &creds); err != nil {
		return nil, fmt.Errorf("account %s: sealed credentials are not a JSON object", accountID)
	}
	return creds, nil
}

// ResealCredentials re-seals, in one transaction, every account's
// credentials still sealed by scheme 1 (bound to the account id only) under
// the current binding. The key is not available to SQL migrations, so the
// application runs this at start-up. Rows that do not open (another key)
// are left as they were and returned: nothing is lost, and they fail to
// publish with ErrCredentialsDoNotOpen until an admin enters them again.
func (s *Store) ResealCredentials(ctx context.Context) (resealed int, stuck []string, err error) {
	if s.box == nil {
		return 0, nil, nil
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		resealed, stuck = 0, nil
		rows, err := tx.Query(ctx, `SELECT id, network, settings, credentials FROM accounts
			WHERE credentials IS NOT NULL AND credentials_scheme <> $1 ORDER BY id FOR UPDATE`, credentialsScheme)
		if err != nil {
			return err
		}
		type row struct {
			id       string
			network  cs.Network
			settings map[string]string
			sealed   []byte
		}
		all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			err := r.Scan(&x.id, &x.network, &x.settings, &x.sealed)
			return x, err
		})
		if err != nil {
			return err
		}
		for _, x := range all {
			plain, err := s.box.Open(x.sealed, legacyContext(x.id))
			if err != nil {
				stuck = append(stuck, x.id)
				continue
			}
			next := s.box.Seal(plain, credentialsContext(x.id, x.network, x.settings))
			if _, err := tx.Exec(ctx, `UPDATE accounts SET credentials = $2, credentials_scheme = $3 WHERE id = $1`,
				x.id, next, credentialsScheme); err != nil {
				return err
			}
			resealed++
		}
		return nil
	})
	return resealed, stuck, err
}

// checkDestination checks an account's URL setting against the operator's
// allow-list, without resolving anything: plain http is refused for
// networks with credentials unless the host is allowed, and an address
// literal the egress guard would refuse is refused now. Names are checked
// where they resolve, on every connection (internal/egress).
func (s *Store) checkDestination(network cs.Network, settings map[string]string) []cs.FieldError {
	key, _ := network.URLSetting()
	raw, ok := settings[key]
	if key == "" || !ok || cs.CheckBaseURL(raw) != "" {
		return nil
	}
	u, _ := url.Parse(raw)
	host, port := strings.TrimSuffix(strings.ToLower(u.Hostname()), "."), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	field := "settings." + key
	if strings.EqualFold(u.Scheme, "http") && network.NeedsCredentials() && !s.egress.AllowsHost(host, port) {
		return []cs.FieldError{{Field: field, Message: "must be an https URL: plain http would send the account's credentials " +
			"in the clear (an operator may allow a host with " + egress.Variable + ")"}}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		p, _ := netip.ParseAddrPort(net.JoinHostPort(a.String(), port))
		var re *egress.RefusedError
		if err := s.egress.Check(p, net.JoinHostPort(host, port)); errors.As(err, &re) {
			return []cs.FieldError{{Field: field, Message: "points at a " + re.Reason + ", which outbound calls may not reach " +
				"(an operator may allow it with " + egress.Variable + ")"}}
		}
	}
	return nil
}

// NewAccount is a social account to create. Credentials are write-only.
type NewAccount struct {
	Network     cs.Network
	Handle      string
	DisplayName string
	Timezone    string
	Settings    map[string]string
	Credentials map[string]string
}

// AccountUpdate changes an account: nil fields are unchanged. Credentials,
// when set, replace the stored ones as a whole. SetChain with ChainID ""
// removes the chain (the account then uses the default rule).
type AccountUpdate struct {
	Handle      *string
	DisplayName *string
	Timezone    *string
	Settings    map[string]string
	Credentials map[string]string
	SetChain    bool
	ChainID     string
}

// CreateAccount creates a social account. Its credentials are sealed with
// the secret key and never returned.
func (s *Store) CreateAccount(ctx context.Context, orgID string, in NewAccount) (cs.Account, error) {
	handle, tz, display := strings.TrimSpace(in.Handle), strings.TrimSpace(in.Timezone), strings.TrimSpace(in.DisplayName)
	if in.Settings == nil {
		in.Settings = map[string]string{}
	}
	if in.Credentials == nil {
		in.Credentials = map[string]string{}
	}
	fields := cs.ValidateAccount(in.Network, handle, tz, in.Settings, in.Credentials)
	if fields = append(fields, s.checkDestination(in.Network, in.Settings)...); len(fields) > 0 {
		return cs.Account{}, &cs.Error{Code: cs.EINVALID, Message: "invalid account", Fields: fields}
	}
	if display == "" {
		display = handle
	}
	id := newID()
	sealed, err := s.seal(id, in.Network, in.Settings, in.Credentials)
	if err != nil {
		return cs.Account{}, err
	}
	var a cs.Account
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		a, err = scanAccount(tx.QueryRow(ctx, `
			INSERT INTO accounts AS a (id, org_id, network, handle, display_name, timezone, settings, credentials, credentials_scheme)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			RETURNING `+accountColumns,
			id, orgID, in.Network, handle, display, tz, in.Settings, sealed, credentialsScheme))
		if isUniqueViolation(err) {
			return errHandleTaken
		}
		if err != nil {
			return err
		}
		after := accountFields(a)
		after["network"] = a.Network
		if a.HasCredentials {
			after["credentials"] = "set"
		}
		return audit(ctx, tx, orgID, auditRow{objectType: "account", objectID: id, action: "create", after: after})
	})
	return a, err
}

// accountFields are an account's audited fields: never its credentials,
// whose change is recorded as "replaced".
func accountFields(a cs.Account) map[string]any {
	return map[string]any{"handle": a.Handle, "display_name": a.DisplayName, "timezone": a.Timezone,
		"settings": a.Settings, "approval_chain_id": a.ApprovalChainID}
}

// changed keeps the fields whose values differ, before and after.
func changed(before, after map[string]any) (map[string]any, map[string]any) {
	b, a := map[string]any{}, map[string]any{}
	for k, v := range after {
		if fmt.Sprint(before[k]) != fmt.Sprint(v) {
			b[k], a[k] = before[k], v
		}
	}
	return b, a
}

var errHandleTaken = &cs.Error{Code: cs.ECONFLICT, Message: "the organization already has this account",
	Fields: []cs.FieldError{{Field: "handle", Message: "is already used by another account of this network"}}}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return strings.TrimSpace(*p)
}

// Account returns an account of the org (never its credentials).
func (s *Store) Account(ctx context.Context, orgID, accountID string) (cs.Account, error) {
	if !validID(orgID) || !validID(accountID) {
		return cs.Account{}, notFound("account")
	}
	a, err := scanAccount(s.pool.QueryRow(ctx, `
		SELECT `+accountColumns+` FROM accounts a WHERE a.org_id = $1 AND a.id = $2 AND a.deleted_at IS NULL`,
		orgID, accountID))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, notFound("account")
	}
	return a, err
}

// ListAccounts lists the org's accounts by id.
func (s *Store) ListAccounts(ctx context.Context, orgID string, p cs.Page) ([]cs.Account, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+accountColumns+` FROM accounts a
		WHERE a.org_id = $1 AND a.deleted_at IS NULL AND ($2::uuid IS NULL OR a.id > $2)
		ORDER BY a.id LIMIT $3`, orgID, after(p), limit(p))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (cs.Account, error) { return scanAccount(r) })
}

// UpdateAccount changes an account. The whole account is validated as it
// will be saved; a chain must be one of the org's.
func (s *Store) UpdateAccount(ctx context.Context, orgID, accountID string, u AccountUpdate) (cs.Account, error) {
	var a cs.Account
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if !validID(orgID) || !validID(accountID) {
			return notFound("account")
		}
		cur, err := scanAccount(tx.QueryRow(ctx, `
			SELECT `+accountColumns+` FROM accounts a WHERE a.org_id = $1 AND a.id = $2 AND a.deleted_at IS NULL
			FOR UPDATE`, orgID, accountID))
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("account")
		}
		if err != nil {
			return err
		}
		before0 := accountFields(cur)
		if u.Handle != nil {
			cur.Handle = deref(u.Handle)
		}
		if u.DisplayName != nil {
			cur.DisplayName = deref(u.DisplayName)
			if cur.DisplayName == "" {
				cur.DisplayName = cur.Handle
			}
		}
		if u.Timezone != nil {
			cur.Timezone = deref(u.Timezone)
		}
		before := cs.DestinationURL(cur.Network, cur.Settings)
		if u.Settings != nil {
			cur.Settings = u.Settings
		}
		fields := cs.ValidateAccount(cur.Network, cur.Handle, cur.Timezone, cur.Settings, u.Credentials)
		fields = append(fields, s.checkDestination(cur.Network, cur.Settings)...)
		// Credentials are bound to where they were entered: sending them
		// elsewhere takes whoever knows them, not whoever may edit settings.
		if key, _ := cur.Network.URLSetting(); cur.HasCredentials && u.Credentials == nil && key != "" &&
			cs.DestinationURL(cur.Network, cur.Settings) != before {
			fields = append(fields, cs.FieldError{Field: "credentials", Message: fmt.Sprintf(
				"must be sent again to change settings.%s: the stored credentials only go to the URL they were entered for", key)})
		}
		var chain any
		if u.SetChain && u.ChainID != "" {
			ok := validID(u.ChainID)
			if ok {
				err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM approval_chains WHERE org_id = $1 AND id = $2)`, orgID, u.ChainID).Scan(&ok)
				if err != nil {
					return err
				}
			}
			if !ok {
				fields = append(fields, cs.FieldError{Field: "approval_chain_id", Message: "no such approval chain in this organization"})
			}
			chain = u.ChainID
		}
		if len(fields) > 0 {
			return &cs.Error{Code: cs.EINVALID, Message: "invalid account", Fields: fields}
		}
		var sealed []byte
		if u.Credentials != nil {
			if sealed, err = s.seal(accountID, cur.Network, cur.Settings, u.Credentials); err != nil {
				return err
			}
		}
		a, err = scanAccount(tx.QueryRow(ctx, `
			UPDATE accounts AS a SET handle = $3, display_name = $4, timezone = $5, settings = $6,
				credentials = CASE WHEN $7 THEN $8 ELSE credentials END,
				credentials_scheme = CASE WHEN $7 THEN `+fmt.Sprint(credentialsScheme)+` ELSE credentials_scheme END,
				approval_chain_id = CASE WHEN $9 THEN $10::uuid ELSE approval_chain_id END,
				updated_at = now()
			WHERE org_id = $1 AND id = $2
			RETURNING `+accountColumns,
			orgID, accountID, cur.Handle, cur.DisplayName, cur.Timezone, cur.Settings,
			u.Credentials != nil, sealed, u.SetChain, chain))
		if isUniqueViolation(err) {
			return errHandleTaken
		}
		if err != nil {
			return raced(err)
		}
		b, af := changed(before0, accountFields(a))
		if u.Credentials != nil {
			b["credentials"], af["credentials"] = nil, "replaced"
		}
		if len(af) == 0 {
			return nil
		}
		return audit(ctx, tx, orgID, auditRow{objectType: "account", objectID: accountID, action: "update", before: b, after: af})
	})
	return a, err
}

// DeleteAccount deletes an account (softly: posts keep pointing at it). Its
// grants go with it.
func (s *Store) DeleteAccount(ctx context.Context, orgID, accountID string) error {
	if !validID(orgID) || !validID(accountID) {
		return notFound("account")
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE accounts SET deleted_at = now(), approval_chain_id = NULL, credentials = NULL
			WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL`, orgID, accountID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound("account")
		}
		if _, err = tx.Exec(ctx, `DELETE FROM account_grants WHERE org_id = $1 AND account_id = $2`, orgID, accountID); err != nil {
			return err
		}
		return audit(ctx, tx, orgID, auditRow{objectType: "account", objectID: accountID, action: "delete"})
	})
}

// AccountCredentials opens an account's credentials, for the publisher only:
// never log them, return them, or put them in workflow history. An account
// without credentials has an empty map.
func (s *Store) AccountCredentials(ctx context.Context, orgID, accountID string) (map[string]string, error) {
	if !validID(orgID) || !validID(accountID) {
		return nil, notFound("account")
	}
	var sealed []byte
	var network cs.Network
	var settings map[string]string
	var scheme int
	err := s.pool.QueryRow(ctx, `SELECT network, settings, credentials_scheme, credentials FROM accounts
		WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL`,
		orgID, accountID).Scan(&network, &settings, &scheme, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("account")
	}
	if err != nil {
		return nil, err
	}
	return s.openCredentials(accountID, network, settings, scheme, sealed)
}

// Grants lists an account's grants: members first, then teams.
func (s *Store) Grants(ctx context.Context, orgID, accountID string) ([]cs.Grant, error) {
	if _, err := s.Account(ctx, orgID, accountID); err != nil {
		return nil, err
	}
	return queryGrants(ctx, s.pool, `
		SELECT `+grantColumns+` FROM account_grants g
		LEFT JOIN members m ON m.id = g.member_id
		WHERE g.org_id = $1 AND g.account_id = $2 AND (m.id IS NULL OR m.removed_at IS NULL)
		ORDER BY g.member_id IS NULL, g.member_id, g.team_id`, orgID, accountID)
}

const grantColumns = `coalesce(g.member_id::text, ''), coalesce(g.team_id::text, ''), g.level,
	g.custom_publish, coalesce(g.custom_approve, false), coalesce(g.custom_manage, false)`

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func queryGrants(ctx context.Context, q querier, sql string, args ...any) ([]cs.Grant, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (cs.Grant, error) {
		var g cs.Grant
		var publish *string
		var approve, manage bool
		err := r.Scan(&g.MemberID, &g.TeamID, &g.Level, &publish, &approve, &manage)
		if publish != nil {
			g.Custom = &cs.CustomRight{Publish: cs.Publish(*publish), Approve: approve, Manage: manage}
		}
		return g, err
	})
}

// ReplaceGrants replaces every grant of an account with grants, after
// checking that each names one active member or one team of the org, at
// most once, and that the member by may make this change (checkManager);
// by "" is Countersign itself (the dev seed), to which no manager rule applies.
func (s *Store) ReplaceGrants(ctx context.Context, orgID, accountID, by string, grants []cs.Grant) ([]cs.Grant, error) {
	var fields []cs.FieldError
	seen := map[string]int{}
	for i, g := range grants {
		p := fmt.Sprintf("grants[%d].", i)
		fields = append(fields, g.Validate(p)...)
		for _, ref := range []struct{ field, id string }{{"member_id", g.MemberID}, {"team_id", g.TeamID}} {
			if ref.id == "" {
				continue
			}
			if !validID(ref.id) {
				fields = append(fields, cs.FieldError{Field: p + ref.field, Message: "must be a UUID"})
				continue
			}
			if j, dup := seen[ref.id]; dup {
				fields = append(fields, cs.FieldError{Field: p + ref.field, Message: fmt.Sprintf("is already granted by grants[%d]", j)})
			}
			seen[ref.id] = i
		}
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if !validID(orgID) || !validID(accountID) {
			return notFound("account")
		}
		var id string
		err := tx.QueryRow(ctx, `SELECT id FROM accounts WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE`,
			orgID, accountID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("account")
		}
		if err != nil {
			return err
		}
		for i, g := range grants {
			p := fmt.Sprintf("grants[%d].", i)
			switch {
			case g.MemberID != "" && validID(g.MemberID):
				if ok, err := activeMember(ctx, tx, orgID, g.MemberID); err != nil {
					return err
				} else if !ok {
					fields = append(fields, cs.FieldError{Field: p + "member_id", Message: "no such member in this organization"})
				}
			case g.TeamID != "" && validID(g.TeamID):
				if ok, err := teamExists(ctx, tx, orgID, g.TeamID); err != nil {
					return err
				} else if !ok {
					fields = append(fields, cs.FieldError{Field: p + "team_id", Message: "no such team in this organization"})
				}
			}
		}
		if len(fields) > 0 {
			return &cs.Error{Code: cs.EINVALID, Message: "invalid grants", Fields: fields}
		}
		if by != "" {
			if err := checkManager(ctx, tx, orgID, accountID, by, grants); err != nil {
				return err
			}
		}
		before, err := queryGrants(ctx, tx, `SELECT `+grantColumns+` FROM account_grants g
			WHERE g.org_id = $1 AND g.account_id = $2 ORDER BY g.member_id IS NULL, g.member_id, g.team_id`, orgID, accountID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM account_grants WHERE org_id = $1 AND account_id = $2`, orgID, accountID); err != nil {
			return err
		}
		if err := audit(ctx, tx, orgID, auditRow{objectType: "account_grants", objectID: accountID, action: "replace",
			before: map[string]any{"grants": before}, after: map[string]any{"grants": grants}}); err != nil {
			return err
		}
		for _, g := range grants {
			var publish, approve, manage any
			if g.Custom != nil {
				publish, approve, manage = string(g.Custom.Publish), g.Custom.Approve, g.Custom.Manage
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO account_grants (org_id, account_id, member_id, team_id, level, custom_publish, custom_approve, custom_manage)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				orgID, accountID, nullIfEmpty(&g.MemberID), nullIfEmpty(&g.TeamID), g.Level, publish, approve, manage); err != nil {
				return raced(err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.Grants(ctx, orgID, accountID)
}

func activeMember(ctx context.Context, tx pgx.Tx, orgID, memberID string) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM members WHERE org_id = $1 AND id = $2 AND removed_at IS NULL)`,
		orgID, memberID).Scan(&ok)
	return ok, err
}

func teamExists(ctx context.Context, tx pgx.Tx, orgID, teamID string) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM teams WHERE org_id = $1 AND id = $2)`, orgID, teamID).Scan(&ok)
	return ok, err
}
