package egress

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// fakeDNS is a resolver that answers A/AAAA questions from a table, in
// process: no query leaves the test. Each name maps to a list of answers,
// one per lookup (the last repeats), so a test can rebind a name.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][]string // "name." -> addresses, one lookup each
	asked   map[string]int
}

func (f *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		client, server := net.Pipe()
		go f.serve(server)
		return client, nil
	}}
}

// serve answers one connection's queries. A pipe is not a PacketConn, so
// the resolver frames messages as over TCP: a 2-byte length, then the
// message.
func (f *fakeDNS) serve(c net.Conn) {
	defer c.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		msg := make([]byte, int(n[0])<<8|int(n[1]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		var q dnsmessage.Message
		if q.Unpack(msg) != nil || len(q.Questions) == 0 {
			return
		}
		resp := dnsmessage.Message{Header: dnsmessage.Header{ID: q.ID, Response: true, Authoritative: true, RecursionAvailable: true},
			Questions: q.Questions}
		qu := q.Questions[0]
		name := strings.ToLower(qu.Name.String())
		f.mu.Lock()
		list := f.answers[name]
		if qu.Type == dnsmessage.TypeA { // count a lookup once (A and AAAA come together)
			f.asked[name]++
		}
		i := max(f.asked[name]-1, 0)
		f.mu.Unlock()
		if len(list) == 0 {
			resp.RCode = dnsmessage.RCodeNameError
		} else {
			a := netip.MustParseAddr(list[min(i, len(list)-1)])
			hdr := dnsmessage.ResourceHeader{Name: qu.Name, Class: dnsmessage.ClassINET, TTL: 0}
			switch {
			case qu.Type == dnsmessage.TypeA && a.Is4():
				hdr.Type = dnsmessage.TypeA
				resp.Answers = append(resp.Answers, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.AResource{A: a.As4()}})
			case qu.Type == dnsmessage.TypeAAAA && a.Is6():
				hdr.Type = dnsmessage.TypeAAAA
				resp.Answers = append(resp.Answers, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.AAAAResource{AAAA: a.As16()}})
			}
		}
		out, err := resp.Pack()
		if err != nil {
			panic(err)
		}
		out = append([]byte{byte(len(out) >> 8), byte(len(out))}, out...)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// sealed returns a guard on the fake resolver whose every allowed
// connection is stopped before connect(2) and recorded: whatever the guard
// lets through, no packet leaves the test.
func sealed(t *testing.T, allow string, dns *fakeDNS) (*Guard, *[]string) {
	t.Helper()
	g, err := Parse(allow)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var passed []string
	g.resolver = dns.resolver()
	g.beforeConnect = func(addr string) error {
		mu.Lock()
		defer mu.Unlock()
		passed = append(passed, addr)
		return errors.New("test: stopped before connect")
	}
	return g, &passed
}

func TestGuardRefusesResolvedPrivateAndMetadataAddresses(t *testing.T) {
	dns := &fakeDNS{asked: map[string]int{}, answers: map[string][]string{
		"private.test.":   {"10.0.0.1"},
		"metadata.test.":  {"169.254.169.254"},
		"metadata6.test.": {"fd00:ec2::254"},
		"cgnat.test.":     {"100.64.1.2"},
		"linklocal.test.": {"fe80::1"},
		"mapped.test.":    {"::ffff:192.168.1.1"},
		"nat64.test.":     {"64:ff9b::a00:1"},
		"loopback.test.":  {"127.0.0.1"},
		"ula.test.":       {"fd12:3456::1"},
		"multicast.test.": {"224.0.0.251"},
		"zero.test.":      {"0.0.0.0"},
	}}
	g, passed := sealed(t, "", dns)
	for name, want := range map[string]string{
		"private.test": "private address", "metadata.test": "cloud metadata address", "metadata6.test": "cloud metadata address",
		"cgnat.test": "shared (CGNAT) address", "linklocal.test": "link-local address", "mapped.test": "private address",
		"nat64.test": "private address", "loopback.test": "loopback address", "ula.test": "private address",
		"multicast.test": "multicast address", "zero.test": "unspecified address",
	} {
		_, err := g.DialContext(context.Background(), "tcp", name+":443")
		var re *RefusedError
		if !errors.As(err, &re) || re.Reason != want || !IsRefused(err) {
			t.Errorf("%s: %v, want a refusal for a %s", name, err, want)
		}
		if re != nil && strings.Contains(err.Error(), re.Addr.Addr().String()) {
			t.Errorf("%s: the refusal names the address: %v", name, err)
		}
	}
	if len(*passed) != 0 {
		t.Fatalf("the guard let these through to connect: %v", *passed)
	}
}

// TestGuardChecksEveryConnection: DNS rebinding. The name first resolves to
// a public address (let through, then stopped by the test before connect),
// then to a private one: the second connection is refused, although the
// name is the same.
func TestGuardChecksEveryConnection(t *testing.T) {
	dns := &fakeDNS{asked: map[string]int{}, answers: map[string][]string{"rebind.test.": {"8.8.8.8", "10.1.2.3"}}}
	g, passed := sealed(t, "", dns)
	_, err := g.DialContext(context.Background(), "tcp", "rebind.test:443")
	if IsRefused(err) || len(*passed) != 1 || (*passed)[0] != "8.8.8.8:443" {
		t.Fatalf("first connection: %v, passed %v", err, *passed)
	}
	_, err = g.DialContext(context.Background(), "tcp", "rebind.test:443")
	if !IsRefused(err) || len(*passed) != 1 {
		t.Fatalf("after rebinding to 10.1.2.3: %v, passed %v", err, *passed)
	}
}

func TestAllowList(t *testing.T) {
	dns := &fakeDNS{asked: map[string]int{}, answers: map[string][]string{
		"mastodon.internal.": {"10.0.0.7"}, "other.internal.": {"10.0.0.7"}, "meta.internal.": {"169.254.169.254"}}}
	g, passed := sealed(t, " 192.168.0.0/16, mastodon.internal:8443,10.9.9.9 ", dns)
	for addr, allowed := range map[string]bool{
		"mastodon.internal:8443": true,  // host:port
		"mastodon.internal:443":  false, // another port
		"other.internal:8443":    false, // same address, another name
		"meta.internal:80":       false,
		"192.168.4.5:80":         true, // CIDR
		"10.9.9.9:25":            true, // an address, any port
		"10.9.9.8:25":            false,
	} {
		*passed = nil
		_, err := g.DialContext(context.Background(), "tcp", addr)
		if allowed && (IsRefused(err) || len(*passed) != 1) {
			t.Errorf("%s: %v, want it allowed", addr, err)
		}
		if !allowed && (!IsRefused(err) || len(*passed) != 0) {
			t.Errorf("%s: %v (passed %v), want it refused", addr, err, *passed)
		}
	}
	if _, err := Parse("10.0.0.0/8,nonsense"); err == nil || !strings.Contains(err.Error(), Variable) || !strings.Contains(err.Error(), "nonsense") {
		t.Fatalf("a bad entry: %v", err)
	}
	if _, err := Parse("host:0"); err == nil {
		t.Fatal("port 0 accepted")
	}
}

func TestAllowsHost(t *testing.T) {
	g, err := Parse("127.0.0.0/8,::1/128,mastodon.internal:80")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host, port string
		want       bool
	}{
		{"127.0.0.1", "8080", true}, {"::1", "80", true}, {"localhost", "3000", true}, {"LOCALHOST.", "3000", true},
		{"mastodon.internal", "80", true}, {"mastodon.internal", "8080", false},
		{"example.test", "80", false}, {"10.0.0.1", "80", false},
	} {
		if got := g.AllowsHost(c.host, c.port); got != c.want {
			t.Errorf("AllowsHost(%s, %s) = %v", c.host, c.port, got)
		}
	}
	if (*Guard)(nil).AllowsHost("127.0.0.1", "80") {
		t.Fatal("a nil guard allows loopback")
	}
}

// TestClientThroughGuard: the HTTP client refuses a loopback server unless
// loopback is allowed (loopback only: nothing leaves the machine).
func TestClientThroughGuard(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++; _, _ = io.WriteString(w, "ok") }))
	defer srv.Close()
	g, _ := Parse("")
	_, err := g.Client(0).Get(srv.URL)
	if !IsRefused(err) || hits != 0 {
		t.Fatalf("loopback without allow-list: %v, %d hits", err, hits)
	}
	g, _ = Parse("127.0.0.0/8,::1/128")
	resp, err := g.Client(0).Get(srv.URL)
	if err != nil || hits != 1 {
		t.Fatalf("loopback allowed: %v, %d hits", err, hits)
	}
	resp.Body.Close()
}

func TestClassifyPublic(t *testing.T) {
	for _, a := range []string{"8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"} {
		if r := Classify(netip.MustParseAddr(a)); r != "" {
			t.Errorf("%s classified %q", a, r)
		}
	}
}
