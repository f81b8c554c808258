package webpushtest

import (
	"crypto/ecdh"
	"encoding/base64"
	"testing"
)

// TestDecrypt_RFC8291Example opens RFC 8291 Appendix A's message with the
// browser's keys, so the stand-in is right on its own, not only in
// agreement with package webpush.
func TestDecrypt_RFC8291Example(t *testing.T) {
	dec := func(s string) []byte {
		t.Helper()
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	priv, err := ecdh.P256().NewPrivateKey(dec("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"))
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()); got != "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4" {
		t.Fatalf("ua_public = %s", got)
	}
	auth := dec("BTBZMqHH6r4Tts7J_aSIgg")
	body := append(
		dec("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"),
		dec("8pfeW0KbunFT06SuDKoJH9Ql87S1QUrdirN6GcG7sFz1y1sqLgVi1VhjVkHsUoEsbI_0LpXMuGvnzQ")...)

	got, err := decrypt(body, priv, auth)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "When I grow up, I want to be a watermelon" {
		t.Fatalf("plaintext = %q", got)
	}

	for name, mutate := range map[string]func(b []byte){
		"ciphertext":    func(b []byte) { b[len(b)-20] ^= 1 },
		"salt":          func(b []byte) { b[0] ^= 1 },
		"record size":   func(b []byte) { b[18], b[19] = 0, 20 },
		"key id":        func(b []byte) { b[40] ^= 1 },
		"key id length": func(b []byte) { b[20] = 64 },
	} {
		t.Run(name, func(t *testing.T) {
			b := append([]byte(nil), body...)
			mutate(b)
			if _, err := decrypt(b, priv, auth); err == nil {
				t.Fatal("tampered message decrypted")
			}
		})
	}
	other := append([]byte(nil), auth...)
	other[0] ^= 1
	if _, err := decrypt(body, priv, other); err == nil {
		t.Fatal("decrypted with another auth secret")
	}
}
