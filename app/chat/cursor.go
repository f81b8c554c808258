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
	b := strconv.AppendInt(nil, p.At, 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, p.ID, 10)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by EncodeCursor: the zero Position for
// "", an error for anything EncodeCursor does not make.
func DecodeCursor(s string) (Position, error) {
	if s == "" {
		return Position{}, nil
	}
	invalid := Errorf(CodeInvalid, "Not a valid cursor.")
	if len(s) > 64 {
		return Position{}, invalid
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Position{}, invalid
	}
	at, id, ok := strings.Cut(string(b), ".")
	if !ok {
		return Position{}, invalid
	}
	var p Position
	if p.At, err = strconv.ParseInt(at, 10, 64); err != nil {
		return Position{}, invalid
	}
	if p.ID, err = strconv.ParseInt(id, 10, 64); err != nil || p.ID <= 0 {
		return Position{}, invalid
	}
	// Only what EncodeCursor makes: one spelling per position.
	if EncodeCursor(p) != s {
		return Position{}, invalid
	}
	return p, nil
}
