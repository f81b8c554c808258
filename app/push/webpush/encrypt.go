package webpush

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	// recordSize is the RFC 8188 record size written in the header. The
	// whole payload goes in one record, so it only has to be at least as
	// large as that record; 4096 is what RFC 8291 §4 expects.
	recordSize = 4096
	// headerSize is salt (16) + record size (4) + key id length (1) +
	// the sender's uncompressed P-256 public key (65).
	headerSize = 16 + 4 + 1 + 65
	// maxBody is the largest body every push service must accept
	// (RFC 8291 §4); larger ones may be refused with 413.
	maxBody = 4096
	// maxPlaintext is what fits in maxBody after the header, the
	// padding delimiter and the 16-byte AEAD tag: 3993 octets.
	maxPlaintext = maxBody - headerSize - 1 - 16
)

// encrypter holds the browser's half of a subscription: its ECDH public
// key and the auth secret it shares only with us.
type encrypter struct {
	uaPublic *ecdh.PublicKey
	auth     []byte
}

// newEncrypter checks and decodes a subscription's keys as browsers give
// them (base64url).
func newEncrypter(p256dh, auth string) (encrypter, error) {
	pub, err := decodeBase64(p256dh)
	if err != nil {
		return encrypter{}, fmt.Errorf("p256dh is not base64url: %w", err)
	}
	uaPublic, err := ecdh.P256().NewPublicKey(pub)
	if err != nil {
		return encrypter{}, fmt.Errorf("p256dh is not an uncompressed P-256 point (%d bytes): %w", len(pub), err)
	}
	secret, err := decodeBase64(auth)
	if err != nil {
		return encrypter{}, fmt.Errorf("auth is not base64url: %w", err)
	}
	if len(secret) != 16 {
		return encrypter{}, fmt.Errorf("auth secret is %d bytes, want 16", len(secret))
	}
	return encrypter{uaPublic: uaPublic, auth: secret}, nil
}

// seal encrypts plaintext for the subscription with a fresh ephemeral
// key and salt, as RFC 8291 requires for every message.
func (e encrypter) seal(plaintext []byte) ([]byte, error) {
	eph, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ephemeral key: %w", err)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	return e.sealWith(plaintext, eph, salt)
}

// sealWith is seal with the ephemeral key and salt given, so a test can
// pin them and compare against RFC 8291's worked example.
func (e encrypter) sealWith(plaintext []byte, eph *ecdh.PrivateKey, salt []byte) ([]byte, error) {
	if len(plaintext) > maxPlaintext {
		return nil, fmt.Errorf("payload is %d bytes, at most %d fit", len(plaintext), maxPlaintext)
	}
	if len(salt) != 16 {
		return nil, errors.New("salt must be 16 bytes")
	}
	asPublic := eph.PublicKey().Bytes()
	ecdhSecret, err := eph.ECDH(e.uaPublic)
	if err != nil {
		return nil, fmt.Errorf("ecdh: %w", err)
	}

	// RFC 8291 §3.3: mix the auth secret and both public keys into the
	// input keying material, so only this browser can derive the key.
	prkKey, err := hkdf.Extract(sha256.New, ecdhSecret, e.auth)
	if err != nil {
		return nil, err
	}
	keyInfo := "WebPush: info\x00" + string(e.uaPublic.Bytes()) + string(asPublic)
	ikm, err := hkdf.Expand(sha256.New, prkKey, keyInfo, 32)
	if err != nil {
		return nil, err
	}

	// RFC 8188 §2.2-2.3: the content-encryption key and nonce.
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	// The nonce of record 0 is the derived nonce XOR 0: itself.
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}

	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}

	body := make([]byte, 0, headerSize+len(plaintext)+1+gcm.Overhead())
	body = append(body, salt...)
	body = binary.BigEndian.AppendUint32(body, recordSize)
	body = append(body, byte(len(asPublic)))
	body = append(body, asPublic...)

	// One record, so it is the last one: delimiter 0x02 and no padding.
	record := make([]byte, 0, len(plaintext)+1)
	record = append(record, plaintext...)
	record = append(record, 0x02)
	return gcm.Seal(body, nonce, record, nil), nil
}
