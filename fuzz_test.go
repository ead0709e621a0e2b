package countersign

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Fuzz targets of the root package. Under plain `go test` their seeds run as
// ordinary tests; `go test -run '^$' -fuzz '^FuzzParseInvitationCSV$' .`
// (and the others) fuzz them.

// FuzzParseInvitationCSV: the invitation import parser never panics, never
// returns more than MaxImportRows rows, refuses a file only with
// EINVALIDCSV or ETOOMANYROWS, and agrees with encoding/csv on how many rows
// a file has.
func FuzzParseInvitationCSV(f *testing.F) {
	for _, s := range []string{
		"email,name,org_role,teams\nana@acme.test,Ana,member,PR;Design\n",
		"Email , NAME\r\nbob@acme.test, Bob \r\n",
		"\xef\xbb\xbfemail\nana@acme.test\n",
		"teams,email\n\" PR ; ;Ops \",c@acme.test\n",
		"email,name\n\"multi\nline\",\"quoted \"\"name\"\"\"\n",
		"email\na@acme.test,extra,fields\n",
		"email,name,org_role,teams\nana@acme.test,Ana,OWNER,\n,,,\n",
		"email\n\n\n   \n",
		"",
		"\n",
		"name,org_role\nAna,member\n",
		"email,email\na@acme.test,b@acme.test\n",
		"email,colour\na@acme.test,red\n",
		"email\n\"unterminated\n",
		"email\na\"b@acme.test\n",
		"email\x00\n",
		"\xff\xfe e\x00m\x00",
		"email;name\na@acme.test;Ana\n",
		"{\"email\": \"a@acme.test\"}",
		// the bound, compactly (large seeds make the fuzzer's minimizing slow)
		"email\n" + strings.Repeat("a\n", MaxImportRows),
		"email\n" + strings.Repeat("a\n", MaxImportRows+1),
		importRows(3),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := ParseInvitationCSV(data)
		again, err2 := ParseInvitationCSV(data)
		if !reflect.DeepEqual(lines, again) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("two parses differ: %v %v / %v %v", lines, err, again, err2)
		}
		if !bytes.HasPrefix(data, bom) {
			withBOM, errBOM := ParseInvitationCSV(append(append([]byte{}, bom...), data...))
			if !reflect.DeepEqual(lines, withBOM) || fmt.Sprint(err) != fmt.Sprint(errBOM) {
				t.Fatalf("a byte order mark changes the result: %v %v / %v %v", lines, err, withBOM, errBOM)
			}
		}
		records, csvErr := readCSV(data)

		if err != nil {
			if lines != nil {
				t.Fatalf("refused file with rows: %v", lines)
			}
			var e *Error
			if !errors.As(err, &e) || (e.Code != EINVALIDCSV && e.Code != ETOOMANYROWS) || e.Message == "" {
				t.Fatalf("refusal is not an EINVALIDCSV/ETOOMANYROWS error: %#v", err)
			}
			if e.Code == ETOOMANYROWS && len(records) <= MaxImportRows+1 {
				// the first MaxImportRows+1 data rows (and the header) must
				// have been readable for the parser to count past the bound
				t.Fatalf("too_many_rows, but encoding/csv reads only %d records (%v)", len(records), csvErr)
			}
			return
		}
		if csvErr != nil {
			t.Fatalf("accepted a file encoding/csv cannot read: %v", csvErr)
		}
		if len(records) == 0 {
			t.Fatal("accepted a file without a header")
		}
		if got, want := len(lines), len(records)-1; got != want {
			t.Fatalf("%d rows parsed, encoding/csv reads %d data rows", got, want)
		}
		if len(lines) > MaxImportRows {
			t.Fatalf("%d rows accepted, more than %d", len(lines), MaxImportRows)
		}
		header := records[0]
		prevLine := 0
		for i, l := range lines {
			if l.Row != i+1 {
				t.Fatalf("row %d numbered %d", i+1, l.Row)
			}
			if l.Line <= prevLine || l.Line < 2 {
				t.Fatalf("row %d starts on line %d, after line %d", l.Row, l.Line, prevLine)
			}
			prevLine = l.Line
			for name, v := range map[string]string{"email": l.Email, "name": l.Name, "org_role": string(l.OrgRole)} {
				if v != strings.TrimSpace(v) {
					t.Fatalf("row %d: %s %q is not trimmed", l.Row, name, v)
				}
			}
			if string(l.OrgRole) != strings.ToLower(string(l.OrgRole)) {
				t.Fatalf("row %d: org_role %q is not lower case", l.Row, l.OrgRole)
			}
			for _, team := range l.Teams {
				if team == "" || team != strings.TrimSpace(team) || strings.Contains(team, ";") {
					t.Fatalf("row %d: bad team name %q in %q", l.Row, team, l.Teams)
				}
			}
			rec := records[i+1]
			if wantProblem := len(rec) > len(header); wantProblem != (l.Problem != "") {
				t.Fatalf("row %d has %d fields, the header %d, problem %q", l.Row, len(rec), len(header), l.Problem)
			}
			if col := columnOf(header, "email"); col < len(rec) && strings.TrimSpace(rec[col]) != l.Email {
				t.Fatalf("row %d: email %q, the file says %q", l.Row, l.Email, rec[col])
			}
		}
	})
}

var bom = []byte("\xef\xbb\xbf")

// readCSV reads data the way an import is read, without the parser's own
// rules (header, bounds), and at most MaxImportRows+2 records.
func readCSV(data []byte) ([][]string, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, bom)))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	var out [][]string
	for len(out) < MaxImportRows+2 {
		rec, err := r.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, rec)
	}
	return out, nil
}

func columnOf(header []string, name string) int {
	for i, h := range header {
		if strings.ToLower(strings.TrimSpace(h)) == name {
			return i
		}
	}
	return len(header) + 1_000_000
}

// importRows is an import of n rows.
func importRows(n int) string {
	var b strings.Builder
	b.WriteString("email,name,org_role,teams\n")
	for i := range n {
		fmt.Fprintf(&b, "user%d@acme.test,User %d,member,Team %d\n", i, i, i%7)
	}
	return b.String()
}

// chainFieldRe is what Chain.Validate may name: a top-level field or a field
// of a step, by index.
var chainFieldRe = regexp.MustCompile(`^(steps|late_policy|steps\[(\d+)\]\.(approver|quorum|timeout|fallback_team|fallback_timeout))$`)

// checkChainVerdict checks Validate's answer about c against the rules it
// documents: an *Error EINVALID whose every field is named and exists, or
// nil for a chain that obeys every rule.
func checkChainVerdict(t *testing.T, c Chain, err error) {
	t.Helper()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || e.Code != EINVALID || len(e.Fields) == 0 {
			t.Fatalf("Validate: %#v, want an EINVALID error naming fields", err)
		}
		for _, fe := range e.Fields {
			m := chainFieldRe.FindStringSubmatch(fe.Field)
			if m == nil || fe.Message == "" {
				t.Fatalf("Validate names field %q (%q)", fe.Field, fe.Message)
			}
			if m[2] != "" {
				if i, _ := strconv.Atoi(m[2]); i >= len(c.Steps) {
					t.Fatalf("Validate names %s, the chain has %d steps", fe.Field, len(c.Steps))
				}
			}
		}
		return
	}
	// Valid: every rule holds.
	if n := len(c.Steps); n < 1 || n > MaxChainSteps {
		t.Fatalf("valid chain with %d steps", n)
	}
	for i, s := range c.Steps {
		set := 0
		for _, v := range []string{s.Approver.Member, s.Approver.Team, s.Approver.Role} {
			if v != "" {
				set++
			}
		}
		switch {
		case set != 1, s.Approver.Role != "" && s.Approver.Role != ApproverRoleApprovers:
			t.Fatalf("valid chain, step %d approver %+v", i, s.Approver)
		case s.Quorum < 0, s.Approver.Member != "" && s.Quorum > 1:
			t.Fatalf("valid chain, step %d quorum %d for %s", i, s.Quorum, s.Approver)
		case s.Timeout != 0 && s.Timeout.D() < time.Second, s.FallbackTimeout != 0 && s.FallbackTimeout.D() < time.Second:
			t.Fatalf("valid chain, step %d timeouts %s / %s", i, s.Timeout, s.FallbackTimeout)
		case s.FallbackTeam != "" && s.Timeout == 0, s.FallbackTimeout != 0 && s.FallbackTeam == "":
			t.Fatalf("valid chain, step %d fallback %q after %s for %s", i, s.FallbackTeam, s.Timeout, s.FallbackTimeout)
		}
		if s.NeededApprovals() < 1 {
			t.Fatalf("valid chain, step %d needs %d approvals", i, s.NeededApprovals())
		}
	}
	if c.LatePolicy != "" && !c.LatePolicy.Valid() {
		t.Fatalf("valid chain with late_policy %q", c.LatePolicy)
	}
}

// FuzzChainJSON: any JSON decodes into a Chain or fails without panicking;
// Validate names each problem's field; a valid chain survives a JSON round
// trip unchanged and still valid (the post's snapshot is stored as JSON).
func FuzzChainJSON(f *testing.F) {
	for _, s := range []string{
		`{"name":"Brand","late_policy":"expire","require_approval_for_all":false,"distinct_approvers":true,
		  "steps":[{"approver":{"member":"m1"},"timeout":"4h","fallback_team":"t1","fallback_timeout":"2h"},
		           {"approver":{"team":"t2"},"quorum":2},{"approver":{"role":"approvers"}}]}`,
		`{"name":"one","steps":[{"approver":{"role":"approvers"}}]}`,
		`{"name":"none","steps":[]}`,
		`{"name":"four","steps":[{"approver":{"role":"approvers"}},{"approver":{"role":"approvers"}},{"approver":{"role":"approvers"}},{"approver":{"role":"approvers"}}]}`,
		`{"steps":[{"approver":{"member":"m","team":"t"}}]}`,
		`{"steps":[{"approver":{}}]}`,
		`{"steps":[{"approver":{"role":"admins"}}]}`,
		`{"steps":[{"approver":{"member":"m"},"quorum":3}]}`,
		`{"steps":[{"approver":{"team":"t"},"quorum":-1}]}`,
		`{"steps":[{"approver":{"team":"t"},"timeout":"10ms"}]}`,
		`{"steps":[{"approver":{"team":"t"},"timeout":"-4h"}]}`,
		`{"steps":[{"approver":{"team":"t"},"timeout":"4"}]}`,
		`{"steps":[{"approver":{"team":"t"},"timeout":4}]}`,
		`{"steps":[{"approver":{"team":"t"},"timeout":null,"fallback_team":"f"}]}`,
		`{"steps":[{"approver":{"team":"t"},"fallback_timeout":"1h"}]}`,
		`{"steps":[{"approver":{"team":"t"},"timeout":"9999999h"}]}`,
		`{"late_policy":"later","steps":[{"approver":{"role":"approvers"}}]}`,
		`{"steps":{}}`,
		`[]`,
		`null`,
		`{"steps":[null]}`,
		`{"steps":[{"approver":"m1"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Chain
		if err := json.Unmarshal(data, &c); err != nil {
			if err.Error() == "" {
				t.Fatal("decoding error without a message")
			}
			return
		}
		err := c.Validate()
		checkChainVerdict(t, c, err)
		if err != nil {
			return
		}
		raw, merr := json.Marshal(c)
		if merr != nil {
			t.Fatalf("marshal a valid chain: %v", merr)
		}
		var back Chain
		if uerr := json.Unmarshal(raw, &back); uerr != nil {
			t.Fatalf("a valid chain does not read back: %v\n%s", uerr, raw)
		}
		if !reflect.DeepEqual(normChain(c), normChain(back)) {
			t.Fatalf("round trip changed the chain:\n%+v\n%+v\n%s", c, back, raw)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("a valid chain is invalid after a round trip: %v", err)
		}
	})
}

// normChain treats a nil and an empty step list alike.
func normChain(c Chain) Chain {
	if len(c.Steps) == 0 {
		c.Steps = nil
	}
	return c
}

// FuzzChainValidate builds chains field by field (a shape JSON fuzzing
// rarely reaches) and checks Validate's verdict against its rules.
func FuzzChainValidate(f *testing.F) {
	f.Add(uint8(1), "m1", "", "", 1, "4h", "t1", "2h", "expire", uint8(0))
	f.Add(uint8(3), "", "t2", "", 2, "", "", "", "hold", uint8(1))
	f.Add(uint8(2), "", "", "approvers", 0, "1s", "", "", "publish_when_approved", uint8(2))
	f.Add(uint8(0), "", "", "approvers", 1, "", "", "", "", uint8(3))
	f.Add(uint8(4), "m", "t", "", 1, "", "", "", "expire", uint8(4))
	f.Add(uint8(1), "m", "", "", 2, "999ms", "", "1h", "soon", uint8(5))
	f.Add(uint8(2), "", "", "owners", -3, "-1h", "f", "-2s", "expire", uint8(6))
	f.Add(uint8(1), "", "t", "", 1, "", "f", "", "expire", uint8(7))
	f.Fuzz(func(t *testing.T, n uint8, member, team, role string, quorum int, timeout, fbTeam, fbTimeout, late string, mask uint8) {
		dur := func(s string) Duration {
			d, err := time.ParseDuration(s)
			if err != nil {
				return 0
			}
			return Duration(d)
		}
		c := Chain{Name: "fuzz", LatePolicy: LatePolicy(late), DistinctApprovers: mask&1 == 0}
		for i := range int(n % 6) {
			// mask varies the steps so they are not all alike
			s := ChainStep{Approver: Approver{Member: member, Team: team, Role: role}, Quorum: quorum,
				Timeout: dur(timeout), FallbackTeam: fbTeam, FallbackTimeout: dur(fbTimeout)}
			if mask>>(i+1)&1 == 1 {
				s = ChainStep{Approver: Approver{Role: ApproverRoleApprovers}}
			}
			c.Steps = append(c.Steps, s)
		}
		checkChainVerdict(t, c, c.Validate())
	})
}

// FuzzCheckPost: any text and media links are checked without panicking;
// what is accepted is at most 64 KiB (SPEC §8 Limits) and within the
// network's count, and what is refused names the text with the limit.
func FuzzCheckPost(f *testing.F) {
	for _, s := range []string{"", "hello", strings.Repeat("a", MaxTextBytes), strings.Repeat("a", MaxTextBytes+1),
		strings.Repeat("<", 300<<10), "e" + strings.Repeat("\u0301", 40000), strings.Repeat("👨‍👩‍👧‍👦", 3000), "\xff\xfe"} {
		for _, n := range []Network{NetworkWebhook, NetworkLog, NetworkMastodon, NetworkBluesky, NetworkX} {
			f.Add(string(n), s, uint8(0))
			f.Add(string(n), s, uint8(2))
		}
	}
	f.Fuzz(func(t *testing.T, network, text string, media uint8) {
		var urls []string
		for i := range int(media % 6) {
			urls = append(urls, fmt.Sprintf("https://cdn.fuzz.test/%d.png", i))
		}
		err := CheckPost(Network(network), text, urls)
		if err == nil {
			if text == "" || len(text) > MaxTextBytes {
				t.Fatalf("accepted a text of %d bytes on %q", len(text), network)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != EINVALID || len(e.Fields) != 1 || e.Fields[0].Field != "text" {
			t.Fatalf("refusal %v does not name the text", err)
		}
		if len(text) > MaxTextBytes && !strings.Contains(e.Fields[0].Message, strconv.Itoa(MaxTextBytes)) {
			t.Fatalf("refusal of %d bytes does not name the limit: %s", len(text), e.Fields[0].Message)
		}
	})
}

// FuzzAccountURL: a URL setting is accepted only without user info, query
// or fragment, as an absolute http(s) URL with a host; an accepted one has
// one canonical spelling (the destination credentials are bound to), which
// is itself accepted and canonical; ValidateAccount names the setting and
// nothing else when it refuses one.
func FuzzAccountURL(f *testing.F) {
	for _, s := range []string{
		"https://mastodon.social", "https://Mastodon.Social:443/", "http://127.0.0.1:8080/hook/", "https://[::1]:8443/x",
		"https://user:pass@evil.test", "https://a.test/?q=1", "https://a.test/#frag", "https://a.test/?", "https://a.test#",
		"ftp://a.test", "//a.test", "https://", "https://:443", "https://a.test:0", "https://a.test:99999", "https://a.test:",
		"https://a.test/%2e%2e/", " https://a.test", "https://a.test/\x00", "javascript:alert(1)", "https://a.test\\@b.test",
		"HTTPS://A.TEST/Path/", "https://xn--bcher-kva.test", "https://a.test/" + strings.Repeat("p", 2100),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		msg := CheckBaseURL(raw)
		canon, err := CanonicalURL(raw)
		fields := ValidateAccount(NetworkWebhook, "acme", "UTC", map[string]string{"url": raw}, nil)
		if msg != "" {
			if err == nil {
				t.Fatalf("%q refused (%s) but has a canonical form %q", raw, msg, canon)
			}
			if len(fields) != 1 || fields[0].Field != "settings.url" || fields[0].Message != msg {
				t.Fatalf("%q: ValidateAccount says %v, want settings.url: %s", raw, fields, msg)
			}
			return
		}
		if err != nil || len(fields) != 0 {
			t.Fatalf("%q accepted but %v / %v", raw, err, fields)
		}
		u, perr := url.Parse(raw)
		if perr != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Hostname() == "" || len(raw) > MaxURLLength {
			t.Fatalf("%q accepted: %+v %v", raw, u, perr)
		}
		if CheckBaseURL(canon) != "" {
			t.Fatalf("canonical %q of %q is refused: %s", canon, raw, CheckBaseURL(canon))
		}
		again, err := CanonicalURL(canon)
		if err != nil || again != canon {
			t.Fatalf("canonical form is not stable: %q -> %q -> %q (%v)", raw, canon, again, err)
		}
		cu, _ := url.Parse(canon)
		if !strings.EqualFold(cu.Hostname(), strings.TrimSuffix(u.Hostname(), ".")) || cu.Scheme != strings.ToLower(u.Scheme) {
			t.Fatalf("canonical %q of %q changed the destination", canon, raw)
		}
		if DestinationURL(NetworkWebhook, map[string]string{"url": raw}) != canon {
			t.Fatalf("DestinationURL differs from the canonical form of %q", raw)
		}
	})
}
