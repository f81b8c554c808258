package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/confab/confab/app/chat"
	"github.com/confab/confab/app/hub"
)

// Client frame types.
const (
	typeAuthenticate = "authenticate"
	typePing         = "ping"
	typeJoin         = "join_conversation"
	typeLeave        = "leave_conversation"
	typeNewMessage   = "new_message"
	typeTyping       = "typing"
	typeReadReceipt  = "read_receipt"
)

// Error frame codes.
const (
	codeInvalidJSON = "invalid_json"
	codeUnknownType = "unknown_type"
	codeInvalid     = "invalid"
	codeNotFound    = "not_found"
	codeForbidden   = "forbidden"
	codeBlocked     = "blocked" // the REST code of that name
	codeRateLimited = "rate_limited"
	codeUnavailable = "unavailable"
	codeInternal    = "internal"
)

// Error frame codes of a server that cannot take more work now, the same
// as the REST codes of that name.
const (
	codeOverloaded  = "overloaded"
	codeStorageFull = "storage_full"
)

// inFrame is every field any client frame may carry. Pointers tell a
// missing field from a zero one.
type inFrame struct {
	Type           string          `json:"type"`
	RequestID      json.RawMessage `json:"request_id"`
	Timestamp      json.RawMessage `json:"timestamp"`
	Token          *string         `json:"token"`
	ConversationID *int64          `json:"conversation_id"`
	LastMessageID  *int64          `json:"last_message_id"`
	SinceVersion   *int64          `json:"since_version"`
	Content        *string         `json:"content"`
	ClientID       *string         `json:"client_id"`
	ReplyToID      *int64          `json:"reply_to_id"`
	AttachmentIDs  []int64         `json:"attachment_ids"`
	IsTyping       *bool           `json:"is_typing"`
	MessageID      *int64          `json:"message_id"`
}

// frameError is a problem with one client frame: it becomes an error
// frame, never a closed connection.
type frameError struct {
	code, detail string
}

// decodeFrame parses one client text frame. It returns the frame even on
// error, so that the error reply can echo its request_id.
func decodeFrame(data []byte) (*inFrame, *frameError) {
	var f inFrame
	err := json.Unmarshal(data, &f)
	// request_id and timestamp are echoed as they came, and a text frame
	// must be valid UTF-8 (RFC 6455 8.1: a client fails the connection
	// otherwise). Invalid bytes can only sit inside their strings, so
	// replacing them keeps the JSON valid, as encoding/json itself does.
	f.RequestID = validUTF8(f.RequestID)
	f.Timestamp = validUTF8(f.Timestamp)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
	case errors.As(err, &te) && te.Field != "":
		return &f, &frameError{codeInvalid, "Field " + te.Field + " has the wrong type."}
	default:
		var probe any
		if json.Unmarshal(data, &probe) == nil {
			return &f, &frameError{codeInvalidJSON, "Expected a JSON object with a type."}
		}
		return &f, &frameError{codeInvalidJSON, "Malformed JSON."}
	}
	if f.Type == "" {
		return &f, &frameError{codeInvalid, "Field type is required."}
	}
	return &f, nil
}

func validUTF8(raw json.RawMessage) json.RawMessage {
	if utf8.Valid(raw) {
		return raw
	}
	return bytes.ToValidUTF8(raw, []byte("\uFFFD"))
}

// requestID returns the frame's request_id when it is a JSON string.
func (f *inFrame) requestID() json.RawMessage {
	if len(f.RequestID) > 1 && f.RequestID[0] == '"' && len(f.RequestID) <= 130 {
		return f.RequestID
	}
	return nil
}

func (f *inFrame) conversationID() (int64, *frameError) {
	if f.ConversationID == nil || *f.ConversationID <= 0 {
		return 0, &frameError{codeInvalid, "Field conversation_id is required."}
	}
	return *f.ConversationID, nil
}

// chatError maps a service error to an error frame: the one place this
// happens for the socket.
func chatError(err error) *frameError {
	var ce *chat.Error
	if !errors.As(err, &ce) && errors.Is(err, context.DeadlineExceeded) {
		// The frame's deadline passed before what it waited for
		// answered (a database that does not).
		ce = chat.ErrTimedOut
	}
	if ce == nil {
		return &frameError{codeInternal, "A server error occurred."}
	}
	switch ce.Code {
	case chat.CodeInvalid, chat.CodeConflict:
		detail := ce.Detail
		for field, msgs := range ce.Fields {
			if len(msgs) > 0 {
				detail = field + ": " + msgs[0]
			}
			break
		}
		return &frameError{codeInvalid, detail}
	case chat.CodeNotFound:
		return &frameError{codeNotFound, "Not found."}
	case chat.CodeForbidden, chat.CodeTokenNotValid, chat.CodeNotAuthenticated, chat.CodeAccountDisabled:
		return &frameError{codeForbidden, ce.Detail}
	case chat.CodeBlocked:
		return &frameError{codeBlocked, ce.Detail}
	case chat.CodeRateLimited:
		return &frameError{codeRateLimited, ce.Detail}
	case chat.CodeUnavailable:
		return &frameError{codeUnavailable, ce.Detail}
	case chat.CodeOverloaded:
		return &frameError{codeOverloaded, ce.Detail}
	case chat.CodeStorageFull:
		return &frameError{codeStorageFull, ce.Detail}
	default:
		return &frameError{codeInternal, "A server error occurred."}
	}
}

// Server frames that are direct replies.

type errorFrame struct {
	Type      string          `json:"type"`
	Code      string          `json:"code"`
	Detail    string          `json:"detail"`
	RequestID json.RawMessage `json:"request_id,omitempty"`
}

type pongFrame struct {
	Type       string          `json:"type"`
	Timestamp  json.RawMessage `json:"timestamp"`
	ServerTime chat.Time       `json:"server_time"`
	RequestID  json.RawMessage `json:"request_id,omitempty"`
}

type establishedFrame struct {
	Type       string    `json:"type"`
	User       chat.User `json:"user"`
	ServerTime chat.Time `json:"server_time"`
}

type joinedFrame struct {
	Type           string          `json:"type"`
	ConversationID int64           `json:"conversation_id"`
	OnlineUserIDs  []int64         `json:"online_user_ids"`
	Recovered      bool            `json:"recovered"`
	Missed         int             `json:"missed"`
	Version        int64           `json:"version"`
	RequestID      json.RawMessage `json:"request_id,omitempty"`
}

type leftFrame struct {
	Type           string          `json:"type"`
	ConversationID int64           `json:"conversation_id"`
	RequestID      json.RawMessage `json:"request_id,omitempty"`
}

// ackEvent is the message_ack frame of a send,
// {"type":"message_ack","client_id":…,"message":…,"request_id":…}, put
// together around the message's JSON that the service already encoded
// (s.JSON) rather than encoding the message again.
func ackEvent(s *chat.Sent, rid json.RawMessage) *hub.Event {
	cid, err := json.Marshal(s.Message.ClientID)
	if err != nil {
		panic("ws: encode message_ack: " + err.Error())
	}
	b := make([]byte, 0, 80+len(cid)+len(s.JSON)+len(rid))
	b = append(b, `{"type":"message_ack","client_id":`...)
	b = append(b, cid...)
	b = append(b, `,"message":`...)
	b = append(b, s.JSON...)
	if len(rid) > 0 {
		r, err := json.Marshal(rid) // as the other replies encode it
		if err != nil {
			panic("ws: encode message_ack: " + err.Error())
		}
		b = append(b, `,"request_id":`...)
		b = append(b, r...)
	}
	b = append(b, '}')
	return &hub.Event{Type: "message_ack", Data: b}
}

type expiryFrame struct {
	Type      string          `json:"type"`
	ExpiresAt chat.Time       `json:"expires_at"`
	RequestID json.RawMessage `json:"request_id,omitempty"`
}

// reply encodes a direct reply as an event for the connection's queue.
func reply(typ string, v any) *hub.Event {
	b, err := json.Marshal(v)
	if err != nil {
		panic("ws: encode " + typ + ": " + err.Error())
	}
	return &hub.Event{Type: typ, Data: b}
}

// serviceError maps a service error to the frame's error reply, and logs
// it when it is the server's fault (internal, unavailable).
func (c *conn) serviceError(op string, err error) *frameError {
	fe := chatError(err)
	if serversFault(fe) {
		c.internalError(op, err)
	}
	return fe
}

// serversFault reports whether an error reply is the server's fault
// rather than the client's. overloaded and storage_full are the
// server's too, but the service logs them itself, once per interval:
// they come at the rate clients send.
func serversFault(fe *frameError) bool {
	return fe.code == codeInternal || fe.code == codeUnavailable
}

// internalError logs an error of the server's on this connection.
func (c *conn) internalError(op string, err error) {
	if errors.Is(err, context.Canceled) && (c.ops.stopped() || c.h.ctx.Err() != nil) {
		return // the connection closed, or the server is shutting down
	}
	c.h.logInternal(op, err, c.id, c.user.ID, c.requestID)
}

// logInternal is where every internal error of the package is logged,
// once, with the connection's id (0 before it has one) and its upgrade
// request's id. An outage (the database out of reach) fails every frame
// and handshake alike: unavailable errors are logged once per interval,
// with the count of those since the last line.
func (h *Handler) logInternal(op string, err error, connID uint64, userID int64, requestID string) {
	attrs := []any{"op", op, "err", err, "conn_id", connID, "user_id", userID, "request_id", requestID}
	if chatError(err).code != codeUnavailable {
		h.opt.Log.Error("ws internal error", attrs...)
	} else if n, ok := h.unavailable.Note(); ok {
		h.opt.Log.Error("ws internal error", append(attrs, "count", n)...)
	}
}
