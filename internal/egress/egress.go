// Package egress guards every outbound connection Countersign makes
// (publishing, look-ups, token refresh, Slack, mail; SPEC §8 "Outbound
// calls"). A Guard's dialer checks the address each connection is about to
// reach, after DNS resolution and before connect(2), so a name that resolves
// (or re-resolves: DNS rebinding) to loopback, a private network, link-local,
// CGNAT, multicast or a cloud metadata endpoint is refused without a packet
// sent. The operator's allow-list, COUNTERSIGN_EGRESS_ALLOW (CIDRs,
// addresses or host:port, comma-separated), lets chosen destinations
// through.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Variable is the environment variable that holds the allow-list.
const Variable = "COUNTERSIGN_EGRESS_ALLOW"

// ErrRefused is wrapped by every refusal of the guard.
var ErrRefused = errors.New("outbound connection refused")

// RefusedError is a connection the guard refused. Its message names the
// kind of address, not the address (a URL's host may be an internal name
// whose resolution is nobody's business).
type RefusedError struct {
	Addr   netip.AddrPort
	Reason string // "private address", "loopback address", ...
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%v: the destination is a %s (allow it with %s)", ErrRefused, e.Reason, Variable)
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// IsRefused reports whether err is (or wraps) a refusal of the guard.
func IsRefused(err error) bool { return errors.Is(err, ErrRefused) }

// blocked lists what no outbound call may reach unless allowed, with the
// reason shown. Order matters only for the reason: the first match names it.
var blocked = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata address"},
	{netip.MustParsePrefix("169.254.170.2/32"), "cloud metadata address"}, // ECS task metadata
	{netip.MustParsePrefix("100.100.100.200/32"), "cloud metadata address"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata address"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified address"},
	{netip.MustParsePrefix("::/128"), "unspecified address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback address"},
	{netip.MustParsePrefix("::1/128"), "loopback address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private address"},
	{netip.MustParsePrefix("fc00::/7"), "private address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local address"},
	{netip.MustParsePrefix("fe80::/10"), "link-local address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT) address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast address"},
	{netip.MustParsePrefix("ff00::/8"), "multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved address"}, // and broadcast
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved address"},
	{netip.MustParsePrefix("192.0.2.0/24"), "reserved address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "reserved address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "reserved address"},
	{netip.MustParsePrefix("100::/64"), "reserved address"},
	{netip.MustParsePrefix("2001:db8::/32"), "reserved address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "reserved address"}, // local-use NAT64
}

// embeddedV4 is where IPv6 carries an IPv4 address that the network routes
// to (NAT64, 6to4): those are checked as the IPv4 address they reach.
func embeddedV4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case netip.MustParsePrefix("64:ff9b::/96").Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case netip.MustParsePrefix("2002::/16").Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// Classify returns why a is refused by default ("" when it is an ordinary
// public address).
func Classify(a netip.Addr) string {
	a = a.Unmap()
	if v4, ok := embeddedV4(a); ok {
		if r := Classify(v4); r != "" {
			return r
		}
	}
	for _, b := range blocked {
		if b.prefix.Contains(a) {
			return b.reason
		}
	}
	if !a.IsGlobalUnicast() {
		return "non-public address"
	}
	return ""
}

// Guard decides which addresses outbound connections may reach. The zero
// value and nil refuse every special address and allow nothing more.
type Guard struct {
	nets  []netip.Prefix
	hosts []string // "host:port", lower case

	// For tests: resolver replaces the system's; beforeConnect runs after
	// the guard allowed an address (returning an error stops the dial).
	resolver      *net.Resolver
	beforeConnect func(addr string) error
}

// Parse reads an allow-list: comma-separated CIDRs ("127.0.0.0/8"),
// addresses ("10.1.2.3", any port) or host:port ("mastodon.internal:443",
// "[fd00::1]:8443"). Empty allows nothing.
func Parse(list string) (*Guard, error) {
	g := &Guard{}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			g.nets = append(g.nets, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(item); err == nil {
			g.nets = append(g.nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		host, port, err := net.SplitHostPort(item)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%s: %q is neither a CIDR, an IP address nor host:port", Variable, item)
		}
		g.hosts = append(g.hosts, normHostPort(host, port))
	}
	return g, nil
}

func normHostPort(host, port string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	}
	return net.JoinHostPort(host, port)
}

// String is the allow-list as it was understood.
func (g *Guard) String() string {
	if g == nil {
		return ""
	}
	var parts []string
	for _, p := range g.nets {
		parts = append(parts, p.String())
	}
	return strings.Join(append(parts, g.hosts...), ",")
}

// Check returns nil when a connection to addr may be made, else a
// *RefusedError. hostPort is the name and port the caller asked for ("" when
// unknown): a host:port entry of the allow-list matches it.
func (g *Guard) Check(addr netip.AddrPort, hostPort string) error {
	a := addr.Addr().Unmap()
	reason := Classify(a)
	if reason == "" {
		return nil
	}
	if g != nil {
		for _, p := range g.nets {
			if p.Contains(a) {
				return nil
			}
		}
		port := strconv.Itoa(int(addr.Port()))
		for _, hp := range []string{hostPort, normHostPort(a.String(), port)} {
			if hp != "" && slices.Contains(g.hosts, hp) {
				return nil
			}
		}
	}
	return &RefusedError{Addr: netip.AddrPortFrom(a, addr.Port()), Reason: reason}
}

// AllowsHost reports whether the operator listed host:port (or, for an IP
// literal or localhost, an address the allow-list covers). It is the
// save-time test for plain http on networks with credentials, made without
// resolving anything.
func (g *Guard) AllowsHost(host, port string) bool {
	if g == nil {
		return false
	}
	if slices.Contains(g.hosts, normHostPort(host, port)) {
		return true
	}
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(h); err == nil {
		addrs = []netip.Addr{a.Unmap()}
	} else if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	}
	for _, a := range addrs {
		for _, p := range g.nets {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}

type hostPortKey struct{}

// control is the net.Dialer's ControlContext: it runs for every connection
// attempt, with the resolved address, before connect(2).
func (g *Guard) control(ctx context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &RefusedError{Reason: "address that cannot be checked"}
	}
	hp, _ := ctx.Value(hostPortKey{}).(string)
	if err := g.Check(ap, hp); err != nil {
		return err
	}
	if g != nil && g.beforeConnect != nil {
		return g.beforeConnect(address)
	}
	return nil
}

// Dialer returns a net.Dialer whose every connection is checked. Prefer
// DialContext, which also lets host:port entries of the allow-list match.
func (g *Guard) Dialer() *net.Dialer {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, ControlContext: g.control}
	if g != nil && g.resolver != nil {
		d.Resolver = g.resolver
	}
	return d
}

// DialContext dials through the guard (for http.Transport, SMTP, websockets).
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil {
		ctx = context.WithValue(ctx, hostPortKey{}, normHostPort(host, port))
	}
	c, err := g.Dialer().DialContext(ctx, network, addr)
	var re *RefusedError
	if errors.As(err, &re) {
		return nil, re // without the net.OpError, which names the resolved address
	}
	return c, err
}

// Transport returns an HTTP transport that dials through the guard. It uses
// no proxy from the environment: a proxy would resolve names where the
// guard cannot check them.
func (g *Guard) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = g.DialContext
	t.DialTLSContext = nil
	return t
}

// Client returns an HTTP client through the guard, with a timeout per call
// and no redirects followed (a redirect is the network's answer, to be
// reported, not a new destination to reach).
func (g *Guard) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     g.Transport(),
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
