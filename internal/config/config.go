// Package config reads Countersign's settings from the environment. It is the
// one place that names environment variables: docker-compose.yml, the README
// and the tests all check against Vars.
package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/countersign/countersign/internal/egress"
)

// Config is everything the production commands read from the environment.
type Config struct {
	DatabaseURL string // DATABASE_URL

	TemporalAddress   string // TEMPORAL_ADDRESS
	TemporalNamespace string // TEMPORAL_NAMESPACE
	TemporalTLSCert   string // TEMPORAL_TLS_CERT: path of a client certificate (mTLS)
	TemporalTLSKey    string // TEMPORAL_TLS_KEY
	TemporalTLSCA     string // TEMPORAL_TLS_CA: path of a CA bundle for the server
	TemporalAPIKey    string // TEMPORAL_API_KEY: Temporal Cloud API key (implies TLS)
	// TemporalGzip compresses gRPC requests to Temporal (TEMPORAL_GRPC_COMPRESSION
	// gzip, the SDK's default); none saves the CPU on a local network.
	TemporalGzip bool

	HTTPAddr    string // COUNTERSIGN_HTTP_ADDR
	MetricsAddr string // COUNTERSIGN_METRICS_ADDR: the metrics listener of serve and worker (never the public API)
	PublicURL   string // COUNTERSIGN_PUBLIC_URL: where users reach the API (links, Slack)
	SecretKey   []byte // COUNTERSIGN_SECRET_KEY: 32 bytes, hex or base64, encrypts credentials

	LogFormat string // COUNTERSIGN_LOG_FORMAT: json | text
	LogLevel  string // COUNTERSIGN_LOG_LEVEL: debug | info | warn | error

	SlackBotToken      string // COUNTERSIGN_SLACK_BOT_TOKEN
	SlackSigningSecret string // COUNTERSIGN_SLACK_SIGNING_SECRET
	SlackAPIURL        string // COUNTERSIGN_SLACK_API_URL
	SlackAppToken      string // COUNTERSIGN_SLACK_APP_TOKEN (Socket Mode)

	DataDir           string // COUNTERSIGN_DATA_DIR: local data; media go to <DataDir>/media by default
	BlobURL           string // COUNTERSIGN_BLOB_URL: "" (the data directory), file:///path or s3://bucket/prefix
	S3Endpoint        string // COUNTERSIGN_S3_ENDPOINT
	S3Region          string // COUNTERSIGN_S3_REGION
	S3AccessKeyID     string // COUNTERSIGN_S3_ACCESS_KEY_ID
	S3SecretAccessKey string // COUNTERSIGN_S3_SECRET_ACCESS_KEY (never logged)
	SMTPURL           string // COUNTERSIGN_SMTP_URL: smtp[s]://user:pass@host:port; empty: no mail (invitation tokens go to the admin)
	MailFrom          string // COUNTERSIGN_MAIL_FROM
	// MemberChangesPerMinute is each member's rate of decisions and edits
	// (COUNTERSIGN_MEMBER_CHANGES_PER_MINUTE, docs/limits.md).
	MemberChangesPerMinute int

	// Egress guards every outbound call; COUNTERSIGN_EGRESS_ALLOW lists what
	// it lets through beyond public addresses. Never nil after Load.
	Egress *egress.Guard
}

// Var documents one environment variable.
type Var struct {
	Name, Default, Help string
}

// Vars lists every variable Countersign reads, in the order the README shows them.
var Vars = []Var{
	{"DATABASE_URL", "", "PostgreSQL connection URL (required for serve, worker, migrate, bootstrap)"},
	{"TEMPORAL_ADDRESS", "127.0.0.1:7233", "Temporal frontend host:port"},
	{"TEMPORAL_NAMESPACE", "default", "Temporal namespace"},
	{"TEMPORAL_TLS_CERT", "", "client certificate file for mTLS to Temporal"},
	{"TEMPORAL_TLS_KEY", "", "client key file for mTLS to Temporal"},
	{"TEMPORAL_TLS_CA", "", "CA bundle that signed the Temporal server's certificate"},
	{"TEMPORAL_API_KEY", "", "Temporal Cloud API key (turns TLS on)"},
	{"TEMPORAL_GRPC_COMPRESSION", "gzip", "gzip or none: compress requests to Temporal (worth it over a WAN or to Temporal Cloud; none saves CPU when Temporal is on the same host or network)"},
	{"COUNTERSIGN_HTTP_ADDR", ":8080", "address the API listens on"},
	{"COUNTERSIGN_METRICS_ADDR", "", "address where serve and worker serve /metrics (its own listener, never the public API; e.g. :9090); empty: none"},
	{"COUNTERSIGN_PUBLIC_URL", "http://localhost:8080", "public base URL of the API, used in links"},
	{"COUNTERSIGN_SECRET_KEY", "", "32-byte key, hex or base64, that encrypts social account credentials (required)"},
	{"COUNTERSIGN_LOG_FORMAT", "json", "log format: json or text"},
	{"COUNTERSIGN_LOG_LEVEL", "info", "log level: debug, info, warn or error"},
	{"COUNTERSIGN_SLACK_BOT_TOKEN", "", "Slack bot token (xoxb-…); without it notifications go to the log"},
	{"COUNTERSIGN_SLACK_SIGNING_SECRET", "", "Slack signing secret that verifies interaction requests"},
	{"COUNTERSIGN_SLACK_API_URL", "https://slack.com/api/", "Slack API base URL (tests, proxies)"},
	{"COUNTERSIGN_SLACK_APP_TOKEN", "", "Slack app token (xapp-…) to use Socket Mode instead of a public URL"},
	{"COUNTERSIGN_DATA_DIR", ".countersign", "directory for local data; uploaded media go to its media/ subdirectory unless COUNTERSIGN_BLOB_URL says otherwise (serve and worker must share it)"},
	{"COUNTERSIGN_BLOB_URL", "", "where media bytes live: empty for <data dir>/media, file:///path for another directory, s3://bucket/prefix for an S3-compatible store"},
	{"COUNTERSIGN_S3_ENDPOINT", "https://s3.amazonaws.com", "S3 API base URL (e.g. https://s3.eu-central-1.amazonaws.com, https://<account>.r2.cloudflarestorage.com)"},
	{"COUNTERSIGN_S3_REGION", "", "S3 region (e.g. eu-central-1; auto for Cloudflare R2)"},
	{"COUNTERSIGN_S3_ACCESS_KEY_ID", "", "S3 access key id"},
	{"COUNTERSIGN_S3_SECRET_ACCESS_KEY", "", "S3 secret access key (never logged)"},
	{"COUNTERSIGN_SMTP_URL", "", "SMTP server for invitation mail: smtp://user:pass@host:587 (STARTTLS, required with credentials) or smtps://user:pass@host:465; empty: no mail, the invite answer carries the token"},
	{"COUNTERSIGN_MAIL_FROM", "Countersign <countersign@localhost>", "sender address of Countersign's mail"},
	{"COUNTERSIGN_MEMBER_CHANGES_PER_MINUTE", "30", "decisions and edits each member may send a minute, in bursts of a third of it (at least 10); more is answered 429"},
	{egress.Variable, "", "what outbound calls may reach beyond public addresses: comma-separated CIDRs, IP addresses or host:port (loopback, private, link-local and metadata addresses are refused otherwise)"},
}

// FromEnv reads the configuration from the process environment.
func FromEnv() (Config, error) { return Load(os.Getenv) }

// Load reads the configuration through getenv, applying the defaults of Vars.
func Load(getenv func(string) string) (Config, error) {
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		for _, v := range Vars {
			if v.Name == name {
				return v.Default
			}
		}
		panic("config: undocumented variable " + name)
	}
	c := Config{
		DatabaseURL:        get("DATABASE_URL"),
		TemporalAddress:    get("TEMPORAL_ADDRESS"),
		TemporalNamespace:  get("TEMPORAL_NAMESPACE"),
		TemporalTLSCert:    get("TEMPORAL_TLS_CERT"),
		TemporalTLSKey:     get("TEMPORAL_TLS_KEY"),
		TemporalTLSCA:      get("TEMPORAL_TLS_CA"),
		TemporalAPIKey:     get("TEMPORAL_API_KEY"),
		HTTPAddr:           get("COUNTERSIGN_HTTP_ADDR"),
		MetricsAddr:        get("COUNTERSIGN_METRICS_ADDR"),
		PublicURL:          strings.TrimRight(get("COUNTERSIGN_PUBLIC_URL"), "/"),
		LogFormat:          get("COUNTERSIGN_LOG_FORMAT"),
		LogLevel:           get("COUNTERSIGN_LOG_LEVEL"),
		SlackBotToken:      get("COUNTERSIGN_SLACK_BOT_TOKEN"),
		SlackSigningSecret: get("COUNTERSIGN_SLACK_SIGNING_SECRET"),
		SlackAPIURL:        get("COUNTERSIGN_SLACK_API_URL"),
		SlackAppToken:      get("COUNTERSIGN_SLACK_APP_TOKEN"),
		DataDir:            get("COUNTERSIGN_DATA_DIR"),
		BlobURL:            get("COUNTERSIGN_BLOB_URL"),
		S3Endpoint:         get("COUNTERSIGN_S3_ENDPOINT"),
		S3Region:           get("COUNTERSIGN_S3_REGION"),
		S3AccessKeyID:      get("COUNTERSIGN_S3_ACCESS_KEY_ID"),
		S3SecretAccessKey:  get("COUNTERSIGN_S3_SECRET_ACCESS_KEY"),
		SMTPURL:            get("COUNTERSIGN_SMTP_URL"),
		MailFrom:           get("COUNTERSIGN_MAIL_FROM"),
	}
	if (c.TemporalTLSCert == "") != (c.TemporalTLSKey == "") {
		return c, fmt.Errorf("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together")
	}
	switch get("TEMPORAL_GRPC_COMPRESSION") {
	case "gzip":
		c.TemporalGzip = true
	case "none":
	default:
		return c, fmt.Errorf("TEMPORAL_GRPC_COMPRESSION must be gzip or none")
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return c, fmt.Errorf("COUNTERSIGN_LOG_FORMAT must be json or text, not %q", c.LogFormat)
	}
	n, err := strconv.Atoi(get("COUNTERSIGN_MEMBER_CHANGES_PER_MINUTE"))
	if c.MemberChangesPerMinute = n; err != nil || n < 1 || n > 60000 {
		return c, fmt.Errorf("COUNTERSIGN_MEMBER_CHANGES_PER_MINUTE must be a whole number from 1 to 60000")
	}
	g, err := egress.Parse(get(egress.Variable))
	if err != nil {
		return c, err
	}
	c.Egress = g
	if key := get("COUNTERSIGN_SECRET_KEY"); key != "" {
		k, err := ParseSecretKey(key)
		if err != nil {
			return c, err
		}
		c.SecretKey = k
	}
	return c, nil
}

// ParseSecretKey decodes a 32-byte key written as 64 hex digits or base64.
func ParseSecretKey(s string) ([]byte, error) {
	if k, err := hex.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == 32 {
			return k, nil
		}
	}
	return nil, fmt.Errorf("COUNTERSIGN_SECRET_KEY must be 32 bytes written as 64 hex digits or base64 (try: openssl rand -hex 32)")
}

// RequireDatabase returns an error naming DATABASE_URL when it is unset.
func (c Config) RequireDatabase() error {
	if c.DatabaseURL == "" {
		return fmt.Errorf("DATABASE_URL is not set: point it at PostgreSQL, e.g. postgres://countersign:countersign@localhost:5432/countersign")
	}
	return nil
}

// RequireSecretKey returns an error naming COUNTERSIGN_SECRET_KEY when it is unset.
func (c Config) RequireSecretKey() error {
	if len(c.SecretKey) == 0 {
		return fmt.Errorf("COUNTERSIGN_SECRET_KEY is not set: generate one with `openssl rand -hex 32`")
	}
	return nil
}
