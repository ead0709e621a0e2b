package config_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/countersign/countersign/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.TemporalAddress != "127.0.0.1:7233" || c.TemporalNamespace != "default" || c.HTTPAddr != ":8080" || c.LogFormat != "json" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.RequireDatabase() == nil || !strings.Contains(c.RequireDatabase().Error(), "DATABASE_URL") {
		t.Fatal("a missing DATABASE_URL must be named")
	}
	if c.RequireSecretKey() == nil || !strings.Contains(c.RequireSecretKey().Error(), "COUNTERSIGN_SECRET_KEY") {
		t.Fatal("a missing COUNTERSIGN_SECRET_KEY must be named")
	}
}

func TestSecretKey(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for _, good := range []string{hex, "q83vq83vq83vq83vq83vq83vq83vq83vq83vq83vq80=", "q83vq83vq83vq83vq83vq83vq83vq83vq83vq83vq80"} {
		c, err := config.Load(env(map[string]string{"COUNTERSIGN_SECRET_KEY": good}))
		if err != nil || len(c.SecretKey) != 32 {
			t.Errorf("%q: %v, %d bytes", good, err, len(c.SecretKey))
		}
	}
	for _, bad := range []string{"short", hex[:62], hex + "ab"} {
		_, err := config.Load(env(map[string]string{"COUNTERSIGN_SECRET_KEY": bad}))
		if err == nil || !strings.Contains(err.Error(), "COUNTERSIGN_SECRET_KEY") {
			t.Errorf("%q: want an error naming the variable, got %v", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), bad) {
			t.Errorf("the error repeats the secret: %v", err)
		}
	}
}

func TestInvalidSettingsAreNamed(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		"COUNTERSIGN_LOG_FORMAT":                {"COUNTERSIGN_LOG_FORMAT": "xml"},
		"TEMPORAL_TLS_KEY":                      {"TEMPORAL_TLS_CERT": "/c.pem"},
		"COUNTERSIGN_EGRESS_ALLOW":              {"COUNTERSIGN_EGRESS_ALLOW": "10.0.0.0/8,not a cidr"},
		"COUNTERSIGN_MEMBER_CHANGES_PER_MINUTE": {"COUNTERSIGN_MEMBER_CHANGES_PER_MINUTE": "0"},
		"TEMPORAL_GRPC_COMPRESSION":             {"TEMPORAL_GRPC_COMPRESSION": "zstd"},
	} {
		if _, err := config.Load(env(vars)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: want an error naming %s, got %v", vars, name, err)
		}
	}
}

func TestMemberChangesPerMinute(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil || c.MemberChangesPerMinute != 30 {
		t.Fatalf("default: %d, %v; want 30", c.MemberChangesPerMinute, err)
	}
	for _, bad := range []string{"-1", "lots", "60001", "2.5"} {
		if _, err := config.Load(env(map[string]string{"COUNTERSIGN_MEMBER_CHANGES_PER_MINUTE": bad})); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if c, err := config.Load(env(map[string]string{"COUNTERSIGN_MEMBER_CHANGES_PER_MINUTE": "600"})); err != nil || c.MemberChangesPerMinute != 600 {
		t.Errorf("600: %d, %v", c.MemberChangesPerMinute, err)
	}
}

func TestEgressAllowList(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil || c.Egress == nil || c.Egress.AllowsHost("127.0.0.1", "80") {
		t.Fatalf("by default nothing special is allowed: %v %v", err, c.Egress)
	}
	c, err = config.Load(env(map[string]string{"COUNTERSIGN_EGRESS_ALLOW": "127.0.0.0/8, mastodon.internal:443"}))
	if err != nil || !c.Egress.AllowsHost("127.0.0.1", "80") || !c.Egress.AllowsHost("mastodon.internal", "443") {
		t.Fatalf("allow-list not read: %v %v", err, c.Egress)
	}
}

// docker-compose.yml must only set variables Countersign reads, so the
// compose file cannot drift from the code.
func TestComposeUsesOnlyKnownVariables(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       any               `yaml:"build"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	var known []string
	for _, v := range config.Vars {
		known = append(known, v.Name)
	}
	checked := 0
	for name, svc := range compose.Services {
		if !strings.HasPrefix(svc.Image, "countersign") {
			continue
		}
		checked++
		if _, ok := svc.Environment["DATABASE_URL"]; !ok {
			t.Errorf("service %s does not set DATABASE_URL", name)
		}
		for k := range svc.Environment {
			if !slices.Contains(known, k) {
				t.Errorf("service %s sets %s, which Countersign does not read", name, k)
			}
		}
	}
	if checked != 3 {
		t.Fatalf("want migrate, serve and worker on the countersign image, found %d services", checked)
	}
}
