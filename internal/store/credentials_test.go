package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/egress"
	"github.com/countersign/countersign/internal/secrets"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/testenv"
)

// credsEnv is a store with a key, an org, and a raw connection for editing
// rows behind the store's back.
type credsEnv struct {
	t   *testing.T
	ctx context.Context
	st  *store.Store
	db  *pgx.Conn
	key []byte
	org string
}

func newCredsEnv(t *testing.T) *credsEnv {
	ctx := context.Background()
	url := testenv.Postgres(t)
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	key := secrets.RandomBytes(32)
	if err := st.SetSecretKey(key); err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	b, err := st.Bootstrap(ctx, "Acme", "o@acme.test", "O")
	if err != nil {
		t.Fatal(err)
	}
	return &credsEnv{t: t, ctx: ctx, st: st, db: db, key: key, org: b.Org.ID}
}

func (e *credsEnv) mastodon(handle, instance, token string) cs.Account {
	e.t.Helper()
	a, err := e.st.CreateAccount(e.ctx, e.org, store.NewAccount{Network: cs.NetworkMastodon, Handle: handle, Timezone: "UTC",
		Settings: map[string]string{"instance_url": instance}, Credentials: map[string]string{"access_token": token}})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *credsEnv) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(e.ctx, sql, args...); err != nil {
		e.t.Fatal(err)
	}
}

func (e *credsEnv) sealed(id string) (scheme int, raw []byte) {
	e.t.Helper()
	if err := e.db.QueryRow(e.ctx, `SELECT credentials_scheme, credentials FROM accounts WHERE id = $1`, id).Scan(&scheme, &raw); err != nil {
		e.t.Fatal(err)
	}
	return scheme, raw
}

// sealOld writes creds into the account's row the way scheme 1 sealed
// them (bound to the account id only), under key.
func (e *credsEnv) sealOld(id string, key []byte, creds map[string]string) {
	e.t.Helper()
	box, err := secrets.NewBox(key)
	if err != nil {
		e.t.Fatal(err)
	}
	plain, _ := json.Marshal(creds)
	e.exec(`UPDATE accounts SET credentials = $2, credentials_scheme = 1 WHERE id = $1`, id, box.Seal(plain, []byte("account:"+id)))
}

func TestResealOldCredentials(t *testing.T) {
	e := newCredsEnv(t)
	old := e.mastodon("old", "https://social.acme.test", "placeholder")
	e.sealOld(old.ID, e.key, map[string]string{"access_token": "old-token"})
	otherKey := e.mastodon("lost", "https://social.acme.test", "placeholder")
	e.sealOld(otherKey.ID, secrets.RandomBytes(32), map[string]string{"access_token": "lost-token"})
	_, lostBefore := e.sealed(otherKey.ID)
	current := e.mastodon("current", "https://social.acme.test", "current-token")

	// Scheme 1 is never opened to publish: only to re-seal.
	if _, err := e.st.AccountCredentials(e.ctx, e.org, old.ID); !errors.Is(err, store.ErrCredentialsDoNotOpen) {
		t.Fatalf("an old row opened before re-sealing: %v", err)
	}
	n, stuck, err := e.st.ResealCredentials(e.ctx)
	if err != nil || n != 1 || len(stuck) != 1 || stuck[0] != otherKey.ID {
		t.Fatalf("reseal: %d %v %v", n, stuck, err)
	}
	if c, err := e.st.AccountCredentials(e.ctx, e.org, old.ID); err != nil || c["access_token"] != "old-token" || len(c) != 1 {
		t.Fatalf("re-sealed credentials: %v %v", c, err)
	}
	if scheme, _ := e.sealed(old.ID); scheme != 2 {
		t.Fatalf("scheme after re-sealing: %d", scheme)
	}
	// What does not open is left exactly as it was (nothing lost).
	if scheme, raw := e.sealed(otherKey.ID); scheme != 1 || !bytes.Equal(raw, lostBefore) {
		t.Fatalf("an unopenable row was changed: scheme %d", scheme)
	}
	if c, err := e.st.AccountCredentials(e.ctx, e.org, current.ID); err != nil || c["access_token"] != "current-token" {
		t.Fatalf("current credentials: %v %v", c, err)
	}
	if n, stuck, err := e.st.ResealCredentials(e.ctx); err != nil || n != 0 || len(stuck) != 1 {
		t.Fatalf("second reseal: %d %v %v", n, stuck, err)
	}
}

func TestCredentialsBoundToDestination(t *testing.T) {
	e := newCredsEnv(t)
	a := e.mastodon("acme", "https://social.acme.test", "tok-acme")
	b := e.mastodon("other", "https://evil.test", "tok-other")

	// Behind the API: another URL, then another account: neither opens.
	e.exec(`UPDATE accounts SET settings = '{"instance_url": "https://evil.test"}' WHERE id = $1`, a.ID)
	if c, err := e.st.AccountCredentials(e.ctx, e.org, a.ID); !errors.Is(err, store.ErrCredentialsDoNotOpen) || c != nil {
		t.Fatalf("moved URL: %v %v", c, err)
	} else if strings.Contains(err.Error(), "tok-acme") {
		t.Fatalf("the error shows the token: %v", err)
	}
	// Another spelling of the original URL is the same destination.
	e.exec(`UPDATE accounts SET settings = '{"instance_url": "HTTPS://Social.Acme.Test:443/"}' WHERE id = $1`, a.ID)
	if c, err := e.st.AccountCredentials(e.ctx, e.org, a.ID); err != nil || c["access_token"] != "tok-acme" {
		t.Fatalf("same URL spelled otherwise: %v %v", c, err)
	}
	e.exec(`UPDATE accounts o SET credentials = a.credentials FROM accounts a WHERE a.id = $1 AND o.id = $2`, a.ID, b.ID)
	if _, err := e.st.AccountCredentials(e.ctx, e.org, b.ID); !errors.Is(err, store.ErrCredentialsDoNotOpen) {
		t.Fatalf("copied to another account: %v", err)
	}
	// Nor through the refresher, which must not re-seal them for the new place.
	_, err := e.st.RefreshAccountCredentials(e.ctx, e.org, b.ID, func(map[string]string) (map[string]string, error) {
		t.Fatal("refresh ran on credentials that do not open")
		return nil, nil
	})
	if !errors.Is(err, store.ErrCredentialsDoNotOpen) {
		t.Fatalf("refresh: %v", err)
	}
}

func TestChangingTheURLNeedsTheCredentials(t *testing.T) {
	e := newCredsEnv(t)
	a := e.mastodon("acme", "https://social.acme.test", "tok-acme")
	fields := func(err error) []string {
		var ce *cs.Error
		if !errors.As(err, &ce) || ce.Code != cs.EINVALID {
			t.Fatalf("want EINVALID, got %v", err)
		}
		var out []string
		for _, f := range ce.Fields {
			out = append(out, f.Field)
		}
		return out
	}
	unchanged := func() {
		t.Helper()
		got, err := e.st.Account(e.ctx, e.org, a.ID)
		if err != nil || got.Settings["instance_url"] != a.Settings["instance_url"] || got.DisplayName != a.DisplayName || !got.UpdatedAt.Equal(a.UpdatedAt) {
			t.Fatalf("a refused change changed the account: %+v %v", got, err)
		}
		if c, err := e.st.AccountCredentials(e.ctx, e.org, a.ID); err != nil || c["access_token"] != "tok-acme" {
			t.Fatalf("credentials after a refused change: %v %v", c, err)
		}
	}
	name := "Renamed"
	_, err := e.st.UpdateAccount(e.ctx, e.org, a.ID, store.AccountUpdate{DisplayName: &name,
		Settings: map[string]string{"instance_url": "https://evil.test"}})
	if f := fields(err); len(f) != 1 || f[0] != "credentials" {
		t.Fatalf("fields: %v", f)
	}
	unchanged()
	for url, field := range map[string]string{
		"http://social.acme.test":    "settings.instance_url", // plain http, not allowed
		"https://10.0.0.1":           "settings.instance_url", // private literal
		"https://[fd00:ec2::254]":    "settings.instance_url", // metadata literal
		"https://169.254.169.254:80": "settings.instance_url",
		"https://social.acme.test/?": "settings.instance_url",
	} {
		_, err := e.st.UpdateAccount(e.ctx, e.org, a.ID, store.AccountUpdate{Settings: map[string]string{"instance_url": url},
			Credentials: map[string]string{"access_token": "tok-new"}})
		if f := fields(err); len(f) != 1 || f[0] != field {
			t.Fatalf("%s: fields %v, want %s", url, f, field)
		}
		unchanged()
	}
	// The same destination spelled otherwise needs nothing more.
	if _, err := e.st.UpdateAccount(e.ctx, e.org, a.ID, store.AccountUpdate{Settings: map[string]string{"instance_url": "https://Social.Acme.Test/"}}); err != nil {
		t.Fatalf("same URL: %v", err)
	}
	// With the credentials, the account moves, and they open there.
	if _, err := e.st.UpdateAccount(e.ctx, e.org, a.ID, store.AccountUpdate{Settings: map[string]string{"instance_url": "https://new.acme.test"},
		Credentials: map[string]string{"access_token": "tok-new"}}); err != nil {
		t.Fatalf("move with credentials: %v", err)
	}
	if c, err := e.st.AccountCredentials(e.ctx, e.org, a.ID); err != nil || c["access_token"] != "tok-new" {
		t.Fatalf("after the move: %v %v", c, err)
	}
	// The operator may allow plain http for a host, and private addresses.
	g, err := egress.Parse("social.acme.test:80,10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	e.st.SetEgress(g)
	for _, url := range []string{"http://social.acme.test", "https://10.0.0.1"} {
		if _, err := e.st.UpdateAccount(e.ctx, e.org, a.ID, store.AccountUpdate{Settings: map[string]string{"instance_url": url},
			Credentials: map[string]string{"access_token": "tok-new"}}); err != nil {
			t.Fatalf("%s with the allow-list: %v", url, err)
		}
	}
	if _, err := e.st.UpdateAccount(e.ctx, e.org, a.ID, store.AccountUpdate{Settings: map[string]string{"instance_url": "http://10.0.0.1:8080"},
		Credentials: map[string]string{"access_token": "tok-new"}}); err != nil {
		t.Fatalf("http to an allowed CIDR: %v", err)
	}
}
