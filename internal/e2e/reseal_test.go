package e2e

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/publish/fakenet"
	"github.com/countersign/countersign/internal/secrets"
	"github.com/countersign/countersign/internal/testenv"
)

// TestOldCredentialsResealedAtStart: credentials sealed the way releases
// before the URL binding sealed them (bound to the account id only) are
// re-sealed when a process starts, and the account publishes as before.
func TestOldCredentialsResealedAtStart(t *testing.T) {
	e := newEnv(t)
	e.pubBootstrap()
	m := fakenet.NewMastodon("old-token")
	t.Cleanup(m.Close)
	acct := e.createAccount("mastodon", "acme", map[string]string{"instance_url": m.URL}, map[string]string{"access_token": "old-token"})

	ctx := context.Background()
	db, err := pgx.Connect(ctx, e.app.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	box, err := secrets.NewBox(e.app.Config.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(map[string]string{"access_token": "old-token"})
	if _, err := db.Exec(ctx, `UPDATE accounts SET credentials = $2, credentials_scheme = 1 WHERE id = $1`,
		acct, box.Seal(plain, []byte("account:"+acct))); err != nil {
		t.Fatal(err)
	}

	// A process of the new release starts (serve, worker or dev).
	a, err := app.Open(ctx, e.app.Config, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	var scheme int
	if err := db.QueryRow(ctx, `SELECT credentials_scheme FROM accounts WHERE id = $1`, acct).Scan(&scheme); err != nil || scheme != 2 {
		t.Fatalf("scheme after start-up: %d %v", scheme, err)
	}
	if p := e.publishNow(acct, "after the upgrade"); p.Status != cs.PostPublished || m.Count() != 1 {
		t.Fatalf("post %s (%q), %d statuses", p.Status, p.LastError, m.Count())
	}
}
