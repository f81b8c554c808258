package chat

import (
	"errors"
	"fmt"
)

// Code classifies an Error. The edges map each code to an HTTP status and a
// WebSocket error frame in exactly one place each.
type Code string

// Error codes. Their string values appear on the wire.
const (
	CodeInvalid          Code = "invalid"
	CodeNotFound         Code = "not_found"
	CodeForbidden        Code = "forbidden"
	CodeConflict         Code = "conflict"
	CodeNotAuthenticated Code = "not_authenticated"
	CodeTokenNotValid    Code = "token_not_valid"
	CodeRateLimited      Code = "rate_limited"
	CodeTooLarge         Code = "too_large"
	CodeUnavailable      Code = "unavailable"
	CodeInternal         Code = "internal"
)

// CodeAccountDisabled refuses an account staff deactivated (401): its
// tokens, logins and refreshes are refused until staff reactivate it.
const CodeAccountDisabled Code = "account_disabled"

// CodeBlocked: the other user blocked the caller, who may therefore not
// start a direct conversation with them, write in it, or add them to a
// group (403, like forbidden).
const CodeBlocked Code = "blocked"

// Error codes of a server that cannot take more work now.
const (
	// CodeOverloaded: the work was refused at once, none of it done,
	// because too much is already waiting (the queue in front of the
	// group commit, or the one in front of password hashing, is full).
	// Retrying shortly is safe.
	CodeOverloaded Code = "overloaded"
	// CodeStorageFull: the database's disk is full, so nothing could be
	// written; reads still work.
	CodeStorageFull Code = "storage_full"
	// Attachments (app/attach): past the per-user storage quota (413);
	// an image of more pixels than allowed, or one that is not a valid
	// image (400); a server that keeps no files (503); a signed URL
	// tampered with or expired (403).
	CodeQuota         Code = "quota_exceeded"
	CodeImageTooLarge Code = "image_too_large"
	CodeInvalidImage  Code = "invalid_image"
	CodeUploadsOff    Code = "uploads_unavailable"
	CodeSignature     Code = "invalid_signature"
)

// Error is the one error type that crosses package boundaries with a
// meaning a client may see. Detail is safe to show; Err (if any) is the
// internal cause and is only logged.
type Error struct {
	Code   Code
	Detail string
	// Fields holds per-field messages for CodeInvalid, DRF style.
	Fields map[string][]string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Detail, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Detail)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error with the given code and a formatted detail.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// ErrNotFound is returned for anything that does not exist or that the
// caller may not see: the two look the same so that nothing leaks existence.
var ErrNotFound = &Error{Code: CodeNotFound, Detail: "Not found."}

// ErrAccountDisabled refuses a deactivated account: a login, a refresh, a
// token or a socket ticket of it.
var ErrAccountDisabled = &Error{Code: CodeAccountDisabled, Detail: "This account has been disabled."}

// ErrUsernameReserved refuses a registration of the username of an
// account deleted less than the reservation period ago.
var ErrUsernameReserved = &Error{Code: CodeInvalid, Detail: "Invalid input.",
	Fields: map[string][]string{"username": {"This username belonged to a deleted account and is reserved for now."}}}

// ErrBlocked refuses what a blocked user may not do to the user who
// blocked them. It says no more than that: not who, not when.
var ErrBlocked = &Error{Code: CodeBlocked, Detail: "You cannot do that: this user has blocked you."}

// ErrReplyTo refuses a reply to a message that is not in the reply's
// conversation: of another one, or none at all (the two look alike, so
// that nothing leaks existence).
var ErrReplyTo = &Error{Code: CodeInvalid, Detail: "Invalid input.",
	Fields: map[string][]string{"reply_to_id": {"No such message in this conversation."}}}

// ErrAttachments refuses a message whose attachment_ids name an upload
// that is not the sender's, is attached already, or does not exist (the
// three look alike).
var ErrAttachments = &Error{Code: CodeInvalid, Detail: "Invalid input.",
	Fields: map[string][]string{"attachment_ids": {"Each must be an upload of yours that is not attached to a message yet."}}}

// ErrorCode returns the code of err, CodeInternal for an error without one,
// and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// StorageFull returns the CodeStorageFull error a store returns when its
// disk is full, with cause (the database's own error) kept for the logs.
func StorageFull(cause error) *Error {
	return &Error{Code: CodeStorageFull, Err: cause,
		Detail: "The server's storage is full; nothing was stored. Retry later."}
}

// Invalid collects field errors for a CodeInvalid error.
type Invalid map[string][]string

// Add records msg against field.
func (v Invalid) Add(field, msg string) { v[field] = append(v[field], msg) }

// Err returns nil when nothing was recorded, else a CodeInvalid *Error.
func (v Invalid) Err() error {
	if len(v) == 0 {
		return nil
	}
	return &Error{Code: CodeInvalid, Detail: "Invalid input.", Fields: v}
}

// InvalidField is shorthand for a CodeInvalid error on one field.
func InvalidField(field, msg string) error {
	return &Error{Code: CodeInvalid, Detail: "Invalid input.", Fields: map[string][]string{field: {msg}}}
}
