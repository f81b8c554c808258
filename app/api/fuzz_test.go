package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"unicode/utf8"

	"github.com/confab/confab/app/chat"
)

// fuzzShapes are the request bodies' shapes, as the handlers declare
// them: decodeJSON must answer every body for each of them.
func fuzzShapes() []func() any {
	return []func() any{
		func() any { return new(credentials) },
		func() any { return new(refreshRequest) },
		func() any {
			return new(struct {
				DisplayName *string `json:"display_name"`
				Password    *string `json:"password"`
			})
		},
		func() any {
			return new(struct {
				ParticipantIDs *[]int64 `json:"participant_ids"`
				Title          *string  `json:"title"`
				IsGroup        *bool    `json:"is_group"`
			})
		},
		func() any {
			return new(struct {
				UserID *int64 `json:"user_id"`
			})
		},
		func() any {
			return new(struct {
				Content  *string `json:"content"`
				ClientID *string `json:"client_id"`
			})
		},
		func() any {
			return new(struct {
				MessageID *int64 `json:"message_id"`
			})
		},
	}
}

// FuzzDecodeJSON: a body either decodes, and then it was a JSON object
// (or nothing), or it is refused with the contract's 400: code invalid,
// a detail, and fields that say what was wrong. Never a panic, never
// another status.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"username":"alice","password":"wonderland1","display_name":"Alice"}`,
		`{"refresh":"a.b.c"}`,
		`{"participant_ids":[2,3],"title":"t","is_group":true}`,
		`{"participant_ids":[2,"3"]}`,
		`{"participant_ids":"2"}`,
		`{"user_id":1e400}`,
		`{"user_id":-0}`,
		`{"content":"hi","client_id":null}`,
		`{"message_id":9223372036854775808}`,
		`{"content":"\ud800"}`,
		"{\"content\":\"\xff\"}",
		`{"content":"x"} {"content":"y"}`,
		`{"a":{"b":[{"c":{}}]}}`,
		`[]`, `null`, `"x"`, `  `, ``, `{`, `}`,
	} {
		for shape := range fuzzShapes() {
			f.Add(uint8(shape), []byte(s))
		}
	}
	shapes := fuzzShapes()
	f.Fuzz(func(t *testing.T, shape uint8, body []byte) {
		dst := shapes[int(shape)%len(shapes)]()
		err := decodeJSON(body, dst)
		if err == nil {
			if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && !json.Valid(trimmed) {
				t.Fatalf("a body that is not JSON was accepted: %q", body)
			}
			return
		}
		var ce *chat.Error
		b, status := toBody(err)
		switch {
		case status != http.StatusBadRequest:
			t.Fatalf("status %d for body %q: %v", status, body, err)
		case b.Code != string(chat.CodeInvalid) || b.Detail == "" || len(b.Fields) == 0:
			t.Fatalf("body %+v for %q: the contract wants code invalid, a detail and fields", b, body)
		case !errors.As(err, &ce):
			t.Fatalf("%T is not a *chat.Error: the WebSocket would not map it the same way", err)
		}
		for k, msgs := range b.Fields {
			if k == "" || len(msgs) == 0 || msgs[0] == "" {
				t.Fatalf("fields %v for %q: each field needs a message", b.Fields, body)
			}
		}
		out, err := json.Marshal(b)
		if err != nil || !utf8.Valid(out) {
			t.Fatalf("the error body does not encode: %v %q", err, out)
		}
	})
}
