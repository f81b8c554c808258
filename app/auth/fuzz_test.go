package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/auth"
)

var fuzzSecret = []byte("fuzz-secret-0123456789abcdef-0123456789")

// FuzzTokensParse: Parse never panics, and accepts only what this secret
// signed, byte for byte: an HS256 token whose signature is exactly the
// HMAC of its first two parts, of the type asked for, unexpired.
func FuzzTokensParse(f *testing.F) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tokens := auth.NewTokens(fuzzSecret, 15*time.Minute, 7*24*time.Hour, clock)
	other := auth.NewTokens([]byte("another-secret-0123456789abcdef-012345"), 15*time.Minute, 7*24*time.Hour, clock)
	for _, typ := range []string{auth.Access, auth.Refresh} {
		for _, tk := range []*auth.Tokens{tokens, other} {
			s, _, err := tk.Issue(42, typ, auth.Session{})
			if err != nil {
				f.Fatal(err)
			}
			f.Add(s, typ == auth.Access)
			// The same signature spelled with the last character's spare
			// bits set: once accepted as if it were the token itself.
			for _, m := range respell(s) {
				f.Add(m, typ == auth.Access)
			}
		}
	}
	for _, s := range []string{
		"", ".", "..", "a.b.c", "a.b.c.d",
		// alg none, and an RS256 header on an HMAC-shaped token.
		"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwidXNlcl9pZCI6MSwianRpIjoieCIsImV4cCI6OTk5OTk5OTk5OX0.",
		"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwidXNlcl9pZCI6MX0.c2ln",
	} {
		f.Add(s, true)
	}

	f.Fuzz(func(t *testing.T, token string, access bool) {
		typ := auth.Refresh
		if access {
			typ = auth.Access
		}
		c, err := tokens.Parse(token, typ)
		if err != nil {
			return
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted a token of %d parts: %q", len(parts), token)
		}
		mac := hmac.New(sha256.New, fuzzSecret)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		if want := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); parts[2] != want {
			t.Fatalf("accepted %q: its signature %q is not this secret's HMAC of it, %q", token, parts[2], want)
		}
		var header struct {
			Alg string `json:"alg"`
		}
		h, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
		if err != nil || json.Unmarshal(h, &header) != nil || header.Alg != "HS256" {
			t.Fatalf("accepted %q with header %q", token, h)
		}
		if c.TokenType != typ || c.UserID <= 0 || c.ID == "" || !c.Expiry().After(now) {
			t.Fatalf("accepted %q as %s: claims %+v", token, typ, c)
		}
	})
}

// respell returns token with its last character changed in the bits that
// base64 leaves unused at the end of a 32-byte signature.
func respell(token string) []string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, token[len(token)-1])
	var out []string
	for spare := 1; spare < 4; spare++ {
		out = append(out, token[:len(token)-1]+string(alphabet[i&^3|(i+spare)&3]))
	}
	return out
}
