package webpush

import (
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"testing"
)

// TestSeal_RFC8291Example encrypts RFC 8291 Appendix A's message with its
// pinned keys and salt and gets the RFC's bytes exactly.
func TestSeal_RFC8291Example(t *testing.T) {
	dec := func(s string) []byte {
		t.Helper()
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("decode %q: %v", s, err)
		}
		return b
	}
	const (
		plaintext = "V2hlbiBJIGdyb3cgdXAsIEkgd2FudCB0byBiZSBhIHdhdGVybWVsb24"
		asPublic  = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
		asPrivate = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
		uaPublic  = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
		salt      = "DGv6ra1nlYgDCS1FRnbzlw"
		auth      = "BTBZMqHH6r4Tts7J_aSIgg"
		// The RFC prints the header and the ciphertext as two base64url
		// strings; the header is 86 octets, so they cannot be joined as text.
		wantHeader     = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
		wantCiphertext = "8pfeW0KbunFT06SuDKoJH9Ql87S1QUrdirN6GcG7sFz1y1sqLgVi1VhjVkHsUoEsbI_0LpXMuGvnzQ"
	)
	if got := string(dec(plaintext)); got != "When I grow up, I want to be a watermelon" {
		t.Fatalf("plaintext = %q", got)
	}
	eph, err := ecdh.P256().NewPrivateKey(dec(asPrivate))
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(eph.PublicKey().Bytes()); got != asPublic {
		t.Fatalf("as_public = %s, want %s", got, asPublic)
	}
	e, err := newEncrypter(uaPublic, auth)
	if err != nil {
		t.Fatal(err)
	}
	body, err := e.sealWith(dec(plaintext), eph, dec(salt))
	if err != nil {
		t.Fatal(err)
	}
	want := append(dec(wantHeader), dec(wantCiphertext)...)
	if !bytes.Equal(body, want) {
		t.Fatalf("body =\n%x\nwant\n%x", body, want)
	}
}

func TestNewEncrypter_RefusesBadKeys(t *testing.T) {
	good, err := ecdh.P256().GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	p256dh := base64.RawURLEncoding.EncodeToString(good.PublicKey().Bytes())
	auth := base64.RawURLEncoding.EncodeToString(make([]byte, 16))
	tests := []struct {
		name, p256dh, auth string
	}{
		{"empty p256dh", "", auth},
		{"p256dh not base64", "!!!", auth},
		{"p256dh not a point", base64.RawURLEncoding.EncodeToString(make([]byte, 65)), auth},
		{"p256dh compressed length", p256dh[:44], auth},
		{"auth too short", p256dh, base64.RawURLEncoding.EncodeToString(make([]byte, 8))},
		{"auth missing", p256dh, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := newEncrypter(tt.p256dh, tt.auth); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := newEncrypter(p256dh, auth); err != nil {
		t.Fatalf("good keys refused: %v", err)
	}
}
