package webpush_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/confab/confab/app/push/webpush"
)

func TestKeys_RoundTrip(t *testing.T) {
	k := mustKeys(t)
	pub, err := base64.RawURLEncoding.DecodeString(k.Public())
	if err != nil || len(pub) != 65 || pub[0] != 4 {
		t.Fatalf("Public %q is not an uncompressed P-256 point: %v", k.Public(), err)
	}
	priv, err := base64.RawURLEncoding.DecodeString(k.Private())
	if err != nil || len(priv) != 32 {
		t.Fatalf("Private is not a 32-byte scalar: %v", err)
	}
	back, err := webpush.ParseKeys(k.Private())
	if err != nil {
		t.Fatal(err)
	}
	if back.Public() != k.Public() || back.Private() != k.Private() {
		t.Fatal("ParseKeys(Private()) is another key")
	}
	// Padded and standard-alphabet forms other libraries write.
	std := base64.StdEncoding.EncodeToString(priv)
	if back, err := webpush.ParseKeys(std); err != nil || back.Public() != k.Public() {
		t.Fatalf("ParseKeys(%q): %v", std, err)
	}
	if s := fmt.Sprint(k); strings.Contains(s, k.Private()) {
		t.Fatalf("printing Keys shows the private key: %s", s)
	}
	if (webpush.Keys{}).Public() != "" {
		t.Fatal("zero Keys has a public key")
	}
}

func TestParseKeys_Refuses(t *testing.T) {
	for name, s := range map[string]string{
		"empty":        "",
		"not base64":   "not a key!",
		"short":        base64.RawURLEncoding.EncodeToString(make([]byte, 16)),
		"zero scalar":  base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
		"public point": mustKeys(t).Public(),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := webpush.ParseKeys(s); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
