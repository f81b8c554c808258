package ws_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/confab/confab/app/server/servertest"
)

// serverFrameTypes are the frame types the contract lets a server send.
var serverFrameTypes = map[string]bool{
	"connection_established": true, "authenticated": true, "token_expiring": true,
	"pong": true, "joined": true, "left": true, "message_ack": true, "error": true,
	"new_message": true, "message_updated": true, "message_deleted": true, "typing": true,
	"read_receipt": true, "presence": true, "notification": true, "conversation_updated": true,
}

// errorFrameCodes are the codes of the contract's error frames.
var errorFrameCodes = map[string]bool{
	"invalid_json": true, "unknown_type": true, "invalid": true,
	"not_found": true, "forbidden": true, "rate_limited": true,
}

// FuzzFrame sends one arbitrary frame, text or binary, over a real
// socket, then a ping: the connection must stay open and answer the
// ping, and everything before the pong must be a frame of the contract
// (an error frame with one of its codes), as valid UTF-8 JSON.
func FuzzFrame(f *testing.F) {
	s := servertest.Start(f)
	alice, bob := s.Register(f, "alice"), s.Register(f, "bob")
	conv := s.Conversation(f, alice, bob)
	for _, frame := range []string{
		`{"type":"ping","timestamp":12,"request_id":"r1"}`,
		`{"type":"join_conversation","conversation_id":CONV,"last_message_id":0}`,
		`{"type":"join_conversation","conversation_id":CONV,"last_message_id":-1}`,
		`{"type":"leave_conversation","conversation_id":CONV}`,
		`{"type":"new_message","conversation_id":CONV,"content":"hi","client_id":"c1"}`,
		`{"type":"new_message","conversation_id":CONV,"content":"   "}`,
		`{"type":"new_message","conversation_id":999999,"content":"x"}`,
		`{"type":"typing","conversation_id":CONV,"is_typing":true}`,
		`{"type":"read_receipt","conversation_id":CONV,"message_id":9223372036854775807}`,
		`{"type":"authenticate","token":"eyJhbGciOiJub25lIn0.e30."}`,
		`{"type":"authenticate"}`,
		`{"type":"connection_established"}`,
		`{"type":"new_message","conversation_id":"CONV"}`,
		"{\"type\":\"ping\",\"timestamp\":\"\xff\",\"request_id\":\"\xfe\"}",
		`[1,2,3]`,
		`{"type":`,
		``,
	} {
		f.Add([]byte(strings.ReplaceAll(frame, "CONV", strconv.FormatInt(conv, 10))), false)
	}
	f.Add([]byte(`{"type":"ping"}`), true)

	f.Fuzz(func(t *testing.T, data []byte, binary bool) {
		if len(data) >= int(s.Config.MaxBodyBytes) {
			return // closes with 1009, as TestOversizedFrameCloses1009 checks
		}
		conn, _, err := dialRaw(t, s.WSURL("/ws/chat/?token="+alice.Access), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		typ := websocket.TextMessage
		if binary {
			typ = websocket.BinaryMessage
		}
		if err := conn.WriteMessage(typ, data); err != nil {
			t.Fatal(err)
		}
		if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","request_id":"fuzz-probe"}`)); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(waitFor))
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("the connection ended instead of answering the ping after %q: %v", data, err)
			}
			if !utf8.Valid(b) {
				t.Fatalf("a text frame that is not UTF-8, which a client must refuse: %q", b)
			}
			var fr struct {
				Type      string `json:"type"`
				Code      string `json:"code"`
				Detail    string `json:"detail"`
				RequestID any    `json:"request_id"`
			}
			if err := json.Unmarshal(b, &fr); err != nil {
				t.Fatalf("a frame that is not a JSON object: %q", b)
			}
			switch {
			case !serverFrameTypes[fr.Type]:
				t.Fatalf("frame type %q is not in the contract: %s", fr.Type, b)
			case fr.Type == "error" && (!errorFrameCodes[fr.Code] || fr.Detail == ""):
				t.Fatalf("error frame with code %q, detail %q after %q", fr.Code, fr.Detail, data)
			case fr.Type == "pong" && fr.RequestID == "fuzz-probe":
				return
			}
		}
	})
}
