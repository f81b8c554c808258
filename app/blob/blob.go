package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrNotFound is returned (wrapped: test with errors.Is) by Open when no
// blob is stored under the key.
var ErrNotFound = errors.New("blob: not found")

// ErrBadKey is returned (wrapped, with the reason) by CheckKey and by every
// Store method given a key CheckKey refuses.
var ErrBadKey = errors.New("blob: invalid key")

// MaxKeyLen is the longest key CheckKey accepts.
const MaxKeyLen = 200

// Store keeps immutable blobs by key. Keys are chosen by the caller:
// 1–200 characters of [a-z0-9], '/', '-', '_', '.', never starting with
// '/' or '.', no "..", no "//" (CheckKey validates; every method refuses a
// bad key with ErrBadKey before touching anything).
type Store interface {
	// Put stores size bytes read from r under key. Once it returns nil
	// the blob survives a crash (durable). Putting a key that exists
	// replaces it atomically (readers see the old or the new, whole). If
	// r fails or yields fewer/more than size bytes, nothing is stored
	// under key (an existing blob stays as it was) and the error says so.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Open opens key for reading. Returns ErrNotFound when absent. The
	// Object seeks (http.ServeContent serves Range requests from it).
	Open(ctx context.Context, key string) (Object, error)
	// Delete removes key; nil when it was already absent.
	Delete(ctx context.Context, key string) error
	// Walk calls fn for every key (any order), for garbage collection and
	// backups; stops at fn's first error and returns it.
	Walk(ctx context.Context, fn func(key string, size int64) error) error
}

// Object is an open blob. Close it when done.
type Object interface {
	io.ReadSeekCloser
	// Size is the blob's length in bytes.
	Size() int64
}

// CheckKey returns nil if key is a valid key, else an error wrapping
// ErrBadKey that says why. A valid key has 1–200 characters of [a-z0-9],
// '/', '-', '_', '.'; it is one or more '/'-separated names, none empty and
// none starting with '.' (so no leading '/', no "//", no trailing '/', no
// ".x" name, which is how Dir names its temp files); and no "..".
func CheckKey(key string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrBadKey, truncate(key), why)
	}
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxKeyLen:
		return bad(fmt.Sprintf("longer than %d characters", MaxKeyLen))
	case strings.Contains(key, ".."):
		return bad(`contains ".."`)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '/' || c == '-' || c == '_' || c == '.') {
			return bad(fmt.Sprintf("character %q not allowed (only a-z 0-9 / - _ .)", c))
		}
	}
	for name := range strings.SplitSeq(key, "/") {
		switch {
		case name == "":
			return bad(`empty name (leading, trailing or double "/")`)
		case name[0] == '.':
			return bad(`a name starts with "."`)
		}
	}
	return nil
}

// truncate shortens a refused key for an error message, which a client
// may have sent at any length.
func truncate(key string) string {
	if len(key) > MaxKeyLen+10 {
		return key[:MaxKeyLen] + "…"
	}
	return key
}

// exactReader reads exactly size bytes from r, and fails if r fails or
// has fewer or more. It never delivers the last byte before it has seen r
// end, so a consumer that stops after size bytes (an HTTP request body of
// that Content-Length) never receives a complete body from a reader that
// was too long. err keeps the first failure, for the caller's message.
type exactReader struct {
	r    io.Reader
	size int64
	left int64
	held []byte // the last byte, held back until r is known to end
	err  error
}

func newExactReader(r io.Reader, size int64) *exactReader {
	return &exactReader{r: r, size: size, left: size}
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if e.left == 0 {
		if e.held == nil {
			// r already ended exactly at size (or size is 0): check it.
			if err := e.checkEnd(); err != nil {
				return 0, err
			}
			if e.size == 0 {
				return 0, io.EOF
			}
		}
		if len(e.held) == 1 {
			p[0] = e.held[0]
			e.held = e.held[:0]
			return 1, nil
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if e.left == 0 && n > 0 {
		// Hold back the last byte until r proves to end here.
		e.held = []byte{p[n-1]}
		if err := e.checkEnd(); err != nil {
			return n - 1, err
		}
		return n - 1, nil
	}
	switch {
	case err == io.EOF:
		e.err = fmt.Errorf("reader ended after %d of %d bytes", e.size-e.left, e.size)
		return n, e.err
	case err != nil:
		e.err = fmt.Errorf("read after %d of %d bytes: %w", e.size-e.left, e.size, err)
		return n, e.err
	}
	return n, nil
}

// checkEnd reads from r once size bytes have come, expecting io.EOF.
func (e *exactReader) checkEnd() error {
	var b [1]byte
	for range 100 {
		n, err := e.r.Read(b[:])
		switch {
		case n > 0:
			e.err = fmt.Errorf("reader has more than %d bytes", e.size)
			return e.err
		case err == io.EOF:
			return nil
		case err != nil:
			e.err = fmt.Errorf("read after %d of %d bytes: %w", e.size, e.size, err)
			return e.err
		}
	}
	e.err = fmt.Errorf("read after %d of %d bytes: %w", e.size, e.size, io.ErrNoProgress)
	return e.err
}
