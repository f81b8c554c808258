package webpush

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// maxEndpoint bounds an endpoint's length: push services issue a few
// hundred characters, and anything far longer is not one of theirs.
const maxEndpoint = 4096

// ErrNotAllowed says an endpoint is not on a known push service, so
// nothing is ever sent to it. Refuse the subscription when it is made.
var ErrNotAllowed = errors.New("webpush: endpoint not allowed")

// DefaultAllowed is the push services browsers use, as URL prefixes:
// Chrome and other Chromium browsers (FCM), Firefox (Mozilla), Safari
// (Apple) and Edge (Windows Notification Service, whose endpoints name one
// of many hosts under notify.windows.com, hence the wildcard). It returns
// a new slice each time, so no caller can change another's list.
func DefaultAllowed() []string {
	return []string{
		"https://fcm.googleapis.com/",
		"https://updates.push.services.mozilla.com/",
		"https://web.push.apple.com/",
		"https://*.notify.windows.com/",
	}
}

// CheckEndpoint returns nil when endpoint is a well-formed URL that
// starts with one of the allowed prefixes, and an error wrapping
// ErrNotAllowed otherwise. An empty allowed list means DefaultAllowed.
//
// A prefix is "scheme://host[:port]/path"; its host may start with "*."
// to allow any one DNS label in its place ("https://*.notify.windows.com/"
// allows "https://db5p.notify.windows.com/..." but not the bare
// "notify.windows.com" nor "a.b.notify.windows.com"). The endpoint is
// parsed, not compared as text: userinfo, a fragment, a port other than
// the prefix's, "." or ".." path segments (escaped or not), escaped
// slashes, and anything but printable ASCII are refused, so
// "https://fcm.googleapis.com.evil.com/" or
// "https://fcm.googleapis.com@evil.com/" never pass.
func CheckEndpoint(endpoint string, allowed []string) error {
	_, err := checkEndpoint(endpoint, allowed)
	return err
}

// checkEndpoint is CheckEndpoint returning the parsed endpoint, so Send
// posts to exactly the URL that was checked.
func checkEndpoint(endpoint string, allowed []string) (*url.URL, error) {
	u, err := parseEndpoint(endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAllowed, err)
	}
	if len(allowed) == 0 {
		allowed = DefaultAllowed()
	}
	var bad []string
	for _, a := range allowed {
		p, err := parsePrefix(a)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%q (%v)", a, err))
			continue
		}
		if p.match(u) {
			return u, nil
		}
	}
	if len(bad) > 0 {
		// A malformed prefix is a configuration mistake; say so rather
		// than let every endpoint of that service look foreign.
		return nil, fmt.Errorf("%w: %s is on no allowed push service; malformed prefixes: %s",
			ErrNotAllowed, u.Scheme+"://"+u.Host, strings.Join(bad, ", "))
	}
	return nil, fmt.Errorf("%w: %s is not a known push service", ErrNotAllowed, u.Scheme+"://"+u.Host)
}

// parseEndpoint parses an endpoint and refuses the forms that could make
// it mean something other than its host and path appear to say.
func parseEndpoint(endpoint string) (*url.URL, error) {
	if endpoint == "" {
		return nil, errors.New("empty endpoint")
	}
	if len(endpoint) > maxEndpoint {
		return nil, fmt.Errorf("endpoint is %d characters, at most %d", len(endpoint), maxEndpoint)
	}
	for i := 0; i < len(endpoint); i++ {
		if c := endpoint[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return nil, fmt.Errorf("endpoint has byte %#x at %d: only printable ASCII without backslashes", c, i)
		}
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("endpoint is not a URL: %w", err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("endpoint scheme %q is not http or https", u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return nil, errors.New("endpoint has no host")
	case u.User != nil:
		return nil, errors.New("endpoint has userinfo")
	case strings.HasSuffix(u.Host, ":"):
		return nil, errors.New("endpoint has an empty port")
	case strings.Contains(endpoint, "#"):
		return nil, errors.New("endpoint has a fragment")
	}
	if err := checkPath(u.EscapedPath()); err != nil {
		return nil, fmt.Errorf("endpoint %w", err)
	}
	return u, nil
}

// checkPath refuses dot segments and escaped separators, which a server
// or proxy on the way may resolve to a path outside the allowed prefix.
func checkPath(escaped string) error {
	if !strings.HasPrefix(escaped, "/") {
		return errors.New("path must start with /")
	}
	segs := strings.Split(escaped[1:], "/")
	for i, seg := range segs {
		if seg == "" && i != len(segs)-1 {
			return errors.New("path has an empty segment (//)")
		}
		s, err := url.PathUnescape(seg)
		if err != nil {
			return fmt.Errorf("path has a bad escape: %w", err)
		}
		if s == "." || s == ".." {
			return errors.New("path has a . or .. segment")
		}
		if strings.ContainsAny(s, `/\`) {
			return errors.New("path has an escaped slash")
		}
	}
	return nil
}

// prefix is one parsed allowed-list entry.
type prefix struct {
	scheme string
	// host is the exact lower-case host name, or "" when suffix is set.
	host string
	// suffix is ".notify.windows.com" for "*.notify.windows.com".
	suffix string
	port   string
	path   string
}

func parsePrefix(s string) (prefix, error) {
	// "*" is not valid in a URL host, so swap it for a label url.Parse
	// accepts and put the wildcard back after.
	const stand = "wildcard-label"
	wild := false
	if rest, ok := strings.CutPrefix(s, "https://*."); ok {
		s, wild = "https://"+stand+"."+rest, true
	} else if rest, ok := strings.CutPrefix(s, "http://*."); ok {
		s, wild = "http://"+stand+"."+rest, true
	}
	u, err := url.Parse(s)
	if err != nil {
		return prefix{}, err
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return prefix{}, fmt.Errorf("scheme %q is not http or https", u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return prefix{}, errors.New("no host")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return prefix{}, errors.New("only scheme, host, port and path")
	case strings.Contains(u.Hostname(), "*"):
		return prefix{}, errors.New(`"*" only as the whole first label`)
	}
	p := prefix{scheme: u.Scheme, port: effectivePort(u), path: u.EscapedPath()}
	if p.path == "" {
		p.path = "/"
	}
	if err := checkPath(p.path); err != nil {
		return prefix{}, err
	}
	host := strings.ToLower(u.Hostname())
	if wild {
		p.suffix = strings.TrimPrefix(host, stand)
		if strings.Count(p.suffix, ".") < 2 {
			return prefix{}, errors.New("a wildcard needs at least two labels after it")
		}
	} else {
		p.host = host
	}
	return p, nil
}

func (p prefix) match(u *url.URL) bool {
	if u.Scheme != p.scheme || effectivePort(u) != p.port {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if p.suffix != "" {
		label, ok := strings.CutSuffix(host, p.suffix)
		if !ok || !isLabel(label) {
			return false
		}
	} else if host != p.host {
		return false
	}
	return strings.HasPrefix(u.EscapedPath(), p.path)
}

// effectivePort is the port a request to u goes to.
func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "http" {
		return "80"
	}
	return "443"
}

// isLabel reports whether s is one DNS label: letters, digits and
// inner hyphens, no dots.
func isLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// CheckAllowed returns an error naming the first malformed prefix of
// allowed, in the form CheckEndpoint takes them, so that configuration
// can refuse a list at start rather than have every endpoint of a
// service look foreign.
func CheckAllowed(allowed []string) error {
	for _, a := range allowed {
		if _, err := parsePrefix(a); err != nil {
			return fmt.Errorf("webpush: allowed endpoint prefix %q: %w", a, err)
		}
	}
	return nil
}
