package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"
)

// Sign returns the webhook-signature value for one delivery attempt:
// "v1," and the standard base64 HMAC-SHA256, under the secret's key, of
// id "." unix-seconds "." body.
func Sign(secret Secret, id string, at time.Time, body []byte) string {
	mac := hmac.New(sha256.New, secret.key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, at.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
