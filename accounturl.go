package countersign

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Default base URLs of networks whose URL setting is optional (SPEC §5).
const (
	DefaultBlueskyPDS = "https://bsky.social"
	DefaultXAPI       = "https://api.x.com"
)

// MaxURLLength bounds a URL setting and a published post's external URL.
const MaxURLLength = 2048

// URLSetting names the setting that says where network n sends its
// credentials, and its default ("" for none, or for the log network).
func (n Network) URLSetting() (key, def string) {
	switch n {
	case NetworkMastodon:
		return "instance_url", ""
	case NetworkBluesky:
		return "pds_url", DefaultBlueskyPDS
	case NetworkX:
		return "api_url", DefaultXAPI
	case NetworkWebhook:
		return "url", ""
	}
	return "", ""
}

// CheckBaseURL says what is wrong with a URL setting ("" when nothing): it
// must be an absolute http or https URL with a host, and no user info,
// query or fragment (they would be dropped, misread, or sent where they do
// not belong). Whether plain http is allowed depends on the operator, and is
// checked where the allow-list is known.
func CheckBaseURL(raw string) string {
	if len(raw) > MaxURLLength {
		return fmt.Sprintf("is longer than %d characters", MaxURLLength)
	}
	if strings.TrimSpace(raw) != raw || strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "must be a URL without spaces or control characters"
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return "must be an absolute http or https URL"
	}
	switch {
	case u.User != nil:
		return "must not contain user info (user:password@): send secrets as credentials"
	case u.RawQuery != "" || u.ForceQuery:
		return "must not contain a query (?…)"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "must not contain a fragment (#…)"
	case strings.TrimSuffix(u.Hostname(), ".") == "" || strings.HasSuffix(u.Hostname(), ".."):
		return "must name a host"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "has an invalid port"
		}
	}
	return ""
}

// CanonicalURL is a valid URL setting in one spelling: scheme and host in
// lower case, no default port, no trailing slash. Credentials are bound to
// it, so two spellings of one destination are the same binding.
func CanonicalURL(raw string) (string, error) {
	if msg := CheckBaseURL(raw); msg != "" {
		return "", fmt.Errorf("URL %s", msg)
	}
	u, _ := url.Parse(raw)
	scheme, host, port := strings.ToLower(u.Scheme), strings.TrimSuffix(strings.ToLower(u.Hostname()), "."), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/"), nil
}

// DestinationURL is where an account of network n with these settings sends
// its credentials, canonical ("" for a network without a URL, or when the
// setting is missing or invalid).
func DestinationURL(n Network, settings map[string]string) string {
	key, def := n.URLSetting()
	if key == "" {
		return ""
	}
	v, ok := settings[key]
	if !ok || v == "" {
		v = def
	}
	c, err := CanonicalURL(v)
	if err != nil {
		return ""
	}
	return c
}
