package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/confab/confab/app/chat"
)

// bind decodes a JSON object body into dst. Unknown fields are ignored;
// malformed JSON and wrong types are 400 invalid with fields. An empty body
// is an empty object, so that required fields are reported as missing.
func bind(c echo.Context, dst any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return echo.ErrStatusRequestEntityTooLarge
		}
		var he *echo.HTTPError
		if errors.As(err, &he) { // the body limit's 413, for a chunked body
			return err
		}
		// Otherwise the client's fault, never a 500: too slow for
		// HTTP_READ_TIMEOUT, or gone before the body ended.
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return echo.ErrRequestTimeout
		}
		return nonField("The request body could not be read.")
	}
	return decodeJSON(body, dst)
}

// decodeJSON is bind without the request: it is what the fuzz tests drive.
func decodeJSON(body []byte, dst any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	if body[0] != '{' {
		return nonField("Expected a JSON object.")
	}
	if err := json.Unmarshal(body, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return chat.InvalidField(te.Field, "Expected "+jsonKind(te.Type.Kind().String())+".")
		}
		return nonField("Malformed JSON.")
	}
	return nil
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"):
		return "an integer"
	case k == "string":
		return "a string"
	case k == "bool":
		return "a boolean"
	case k == "slice":
		return "a list"
	default:
		return "a different type"
	}
}

func nonField(msg string) error {
	return &chat.Error{Code: chat.CodeInvalid, Detail: msg, Fields: map[string][]string{"non_field_errors": {msg}}}
}

// required records a missing field.
func required(v chat.Invalid, name string, present bool) {
	if !present {
		v.Add(name, "This field is required.")
	}
}

// pathID parses an id path parameter; anything but a positive integer is
// a route that does not exist.
func pathID(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, chat.ErrNotFound
	}
	return id, nil
}

// queryInt parses an optional non-negative integer query parameter.
func queryInt(c echo.Context, name string) (int64, error) {
	s := c.QueryParam(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, chat.InvalidField(name, "A valid non-negative integer is required.")
	}
	return n, nil
}
