package ws

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeFrame: whatever a client sends, decoding answers with a frame
// to dispatch or with one of the contract's error codes, never a panic,
// and a request_id it echoes is always a short JSON string.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping","timestamp":"2024-01-01T00:00:00Z","request_id":"r1"}`,
		`{"type":"join_conversation","conversation_id":1,"last_message_id":0}`,
		`{"type":"leave_conversation","conversation_id":1}`,
		`{"type":"new_message","conversation_id":1,"content":"hi","client_id":"c1"}`,
		`{"type":"typing","conversation_id":1,"is_typing":false}`,
		`{"type":"read_receipt","conversation_id":1,"message_id":3}`,
		`{"type":"authenticate","token":"a.b.c"}`,
		`{"type":"ping","request_id":{"nested":[1,2]}}`,
		`{"type":"new_message","conversation_id":"1"}`,
		`{"type":7}`,
		`{"type":"ping","conversation_id":1e400}`,
		`{"type":"ping","request_id":"\ud800"}`,
		`[{"type":"ping"}]`,
		`"ping"`,
		`{"type":"ping"`,
		`{}`,
		``,
		"{\"type\":\"ping\",\"content\":\"\xff\"}",
		// Echoed fields with bytes that are not UTF-8 were once sent
		// back as they came, in a text frame that a client must refuse.
		"{\"type\":\"nope\",\"request_id\":\"\xff\"}",
		"{\"type\":\"ping\",\"timestamp\":[\"\xc3\x28\"],\"request_id\":\"ok\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, ferr := decodeFrame(data)
		if fr == nil {
			t.Fatal("decodeFrame returned no frame: the error reply could not echo a request_id")
		}
		if ferr != nil {
			switch ferr.code {
			case codeInvalidJSON, codeInvalid:
			default:
				t.Fatalf("error code %q is not one a bad frame may get", ferr.code)
			}
			if ferr.detail == "" {
				t.Fatal("error without a detail")
			}
			if !json.Valid(data) && ferr.code != codeInvalidJSON {
				t.Fatalf("malformed JSON answered %q, not invalid_json", ferr.code)
			}
		} else {
			if fr.Type == "" {
				t.Fatal("a frame without a type was accepted")
			}
			if !json.Valid(data) {
				t.Fatalf("malformed JSON was accepted: %q", data)
			}
		}
		if rid := fr.requestID(); rid != nil {
			var s string
			if len(rid) > 130 || json.Unmarshal(rid, &s) != nil {
				t.Fatalf("request_id %q would be echoed, and is not a short JSON string", rid)
			}
		}
		// The error reply, unknown_type's detail included, must encode
		// as valid UTF-8: a client must fail a connection whose text
		// frame is not (RFC 6455, 8.1).
		detail := "Unknown frame type " + truncate(fr.Type, 64) + "."
		b, err := json.Marshal(errorFrame{Type: "error", Code: codeUnknownType, Detail: detail, RequestID: fr.requestID()})
		if err != nil || !json.Valid(b) || !utf8.Valid(b) {
			t.Fatalf("the error reply does not encode as valid UTF-8 JSON: %v %q", err, b)
		}
		if len(fr.Timestamp) > 0 {
			b, err := json.Marshal(pongFrame{Type: "pong", Timestamp: fr.Timestamp, RequestID: fr.requestID()})
			if err != nil || !json.Valid(b) || !utf8.Valid(b) {
				t.Fatalf("the pong does not encode as valid UTF-8 JSON: %v %q", err, b)
			}
		}
	})
}
