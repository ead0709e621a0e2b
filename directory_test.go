package countersign

import (
	"fmt"
	"strings"
	"testing"
)

func TestValidateAccount(t *testing.T) {
	type m = map[string]string
	tests := []struct {
		name     string
		network  Network
		handle   string
		tz       string
		settings m
		creds    m
		fields   []string // the fields named, in order; nil = valid
	}{
		{"webhook", NetworkWebhook, "acme", "Europe/Paris", m{"url": "https://hooks.acme.test/x"}, m{"secret": "whsec_abc"}, nil},
		{"log needs nothing", NetworkLog, "dev", "UTC", m{}, m{}, nil},
		{"mastodon", NetworkMastodon, "@acme", "America/New_York", m{"instance_url": "https://mastodon.social"}, m{"access_token": "t"}, nil},
		{"bluesky default pds", NetworkBluesky, "acme.bsky.social", "Asia/Tokyo", m{}, m{"identifier": "acme", "app_password": "p"}, nil},
		{"x without refresh", NetworkX, "acme", "UTC", nil, m{"access_token": "t"}, nil},
		{"credentials unchanged", NetworkWebhook, "acme", "UTC", m{"url": "https://h.test"}, nil, nil},

		{"unknown network", "myspace", "acme", "UTC", nil, nil, []string{"network"}},
		{"no handle", NetworkLog, " ", "UTC", nil, nil, []string{"handle"}},
		{"no timezone", NetworkLog, "a", "", nil, nil, []string{"timezone"}},
		{"Local is not a zone", NetworkLog, "a", "Local", nil, nil, []string{"timezone"}},
		{"bad timezone", NetworkLog, "a", "Mars/Olympus", nil, nil, []string{"timezone"}},
		{"offset is not a zone", NetworkLog, "a", "+02:00", nil, nil, []string{"timezone"}},
		{"unknown setting", NetworkLog, "a", "UTC", m{"url": "https://x.test"}, nil, []string{"settings.url"}},
		{"missing url", NetworkWebhook, "a", "UTC", m{}, m{"secret": "whsec_x"}, []string{"settings.url"}},
		{"relative url", NetworkWebhook, "a", "UTC", m{"url": "/hook"}, m{"secret": "whsec_x"}, []string{"settings.url"}},
		{"ftp url", NetworkMastodon, "a", "UTC", m{"instance_url": "ftp://x.test"}, m{"access_token": "t"}, []string{"settings.instance_url"}},
		{"missing secret", NetworkWebhook, "a", "UTC", m{"url": "https://h.test"}, m{}, []string{"credentials.secret"}},
		{"secret without whsec_", NetworkWebhook, "a", "UTC", m{"url": "https://h.test"}, m{"secret": "hunter2"}, []string{"credentials.secret"}},
		{"unknown credential", NetworkMastodon, "a", "UTC", m{"instance_url": "https://m.test"}, m{"access_token": "t", "password": "p"}, []string{"credentials.password"}},
		{"empty credential", NetworkBluesky, "a", "UTC", nil, m{"identifier": "", "app_password": "p"}, []string{"credentials.identifier"}},
		{"x refresh without client id", NetworkX, "a", "UTC", nil, m{"access_token": "t", "refresh_token": "r"}, []string{"credentials.client_id"}},
		{"x with refresh", NetworkX, "a", "UTC", nil, m{"access_token": "t", "refresh_token": "r", "client_id": "c"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := ValidateAccount(tt.network, tt.handle, tt.tz, tt.settings, tt.creds)
			var got []string
			for _, f := range fields {
				got = append(got, f.Field)
				for _, v := range tt.creds {
					if len(v) > 3 && strings.Contains(f.Message, v) {
						t.Errorf("message %q repeats a credential", f.Message)
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.fields) {
				t.Errorf("fields %v (%v), want %v", got, fields, tt.fields)
			}
		})
	}
}

func TestParseInvitationCSV(t *testing.T) {
	lines, err := ParseInvitationCSV([]byte("\xef\xbb\xbfEmail, Teams ,name,org_role\n" +
		"ana@acme.test,PR; Social ;,Ana,admin\n" +
		"\n" +
		"bob@acme.test,,,\n" +
		"\"carl@acme.test\",\"Multi\nLine\",Carl\n" +
		"dan@acme.test,,Dan,member,extra\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 4 {
		t.Fatalf("%d lines: %+v", len(lines), lines)
	}
	ana := lines[0]
	if ana.Row != 1 || ana.Line != 2 || ana.Email != "ana@acme.test" || ana.Name != "Ana" || ana.OrgRole != RoleAdmin ||
		fmt.Sprint(ana.Teams) != "[PR Social]" || ana.Problem != "" {
		t.Errorf("ana: %+v", ana)
	}
	if b := lines[1]; b.Row != 2 || b.Line != 4 || b.Email != "bob@acme.test" || b.OrgRole != "" || len(b.Teams) != 0 {
		t.Errorf("bob: %+v", b)
	}
	if c := lines[2]; c.Row != 3 || c.Line != 5 || fmt.Sprint(c.Teams) != "[Multi\nLine]" || c.Problem != "" {
		t.Errorf("carl (short row, multi-line field): %+v", c)
	}
	if d := lines[3]; d.Row != 4 || !strings.Contains(d.Problem, "5 fields") {
		t.Errorf("dan (extra field): %+v", d)
	}

	refused := map[string]struct {
		data, code string
	}{
		"empty":            {"", EINVALIDCSV},
		"no email column":  {"name,teams\nAna,PR\n", EINVALIDCSV},
		"unknown column":   {"email,phone\na@b.test,123\n", EINVALIDCSV},
		"duplicate column": {"email,email\na@b.test,c@d.test\n", EINVALIDCSV},
		"json":             {`{"email": "ana@acme.test"}`, EINVALIDCSV},
		"binary":           {"email\n\x00\x01\x02", EINVALIDCSV},
		"not utf-8":        {"email\n\xff\xfe@x.test\n", EINVALIDCSV},
		"bare quote":       {"email,name\na@b.test,An\"a\n", EINVALIDCSV},
		"501 rows":         {"email\n" + strings.Repeat("a@b.test\n", 501), ETOOMANYROWS},
	}
	for name, tt := range refused {
		if lines, err := ParseInvitationCSV([]byte(tt.data)); ErrorCode(err) != tt.code {
			t.Errorf("%s: %v %+v, want %s", name, err, lines, tt.code)
		}
	}
	if lines, err := ParseInvitationCSV([]byte("email\n" + strings.Repeat("a@b.test\n", 500))); err != nil || len(lines) != 500 {
		t.Errorf("500 rows: %d, %v", len(lines), err)
	}
}
