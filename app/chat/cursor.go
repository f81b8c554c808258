package chat

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// EncodeCursor returns the opaque cursor of p that a client passes back to
// get the page after it ("" for the start of a list).
func EncodeCursor(p Position) string {
	if p.IsZero() {
		return ""
	}
	return encodeInts("", p.At, p.ID)
}

// DecodeCursor reads a cursor made by EncodeCursor: the zero Position for
// "", an error for anything EncodeCursor does not make.
func DecodeCursor(s string) (Position, error) {
	if s == "" {
		return Position{}, nil
	}
	n, ok := decodeInts(s, "", 2)
	if !ok || n[1] <= 0 {
		return Position{}, errInvalidCursor
	}
	return Position{At: n[0], ID: n[1]}, nil
}

var errInvalidCursor = Errorf(CodeInvalid, "Not a valid cursor.")

// encodeInts is the spelling of every cursor: tag (which tells the lists'
// cursors apart), the numbers joined by ".", in unpadded base64url.
func encodeInts(tag string, ns ...int64) string {
	b := []byte(tag)
	for i, n := range ns {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendInt(b, n, 10)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeInts reads the count numbers of a cursor encodeInts made with
// tag, and nothing else: one spelling per cursor.
func decodeInts(s, tag string, count int) ([]int64, bool) {
	if len(s) > 96 { // more than any count of int64s this package spells
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	rest, ok := strings.CutPrefix(string(b), tag)
	if !ok {
		return nil, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != count {
		return nil, false
	}
	ns := make([]int64, count)
	for i, p := range parts {
		if ns[i], err = strconv.ParseInt(p, 10, 64); err != nil {
			return nil, false
		}
	}
	return ns, encodeInts(tag, ns...) == s
}
