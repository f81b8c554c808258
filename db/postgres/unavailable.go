package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/confab/confab/app/chat"
)

// ErrUnavailable is what Unavailable makes of an error that says the
// database could not be reached or did not answer in time.
var ErrUnavailable = &chat.Error{Code: chat.CodeUnavailable,
	Detail: "The database is not answering; retry shortly."}

// Unavailable returns err as a chat.Error with CodeUnavailable (its Detail
// that of ErrUnavailable, err kept as the cause) when err says the
// database is out of reach: no connection could be made, a connection
// broke or was reset mid-call, the server is shutting down or refuses
// connections, or the call passed its context's deadline. Any other
// error, nil, and errors that already carry a code come back unchanged:
// an error the server answered with is a fault of the call, not of the
// network, and stays internal.
//
// Store methods return such errors as they come; the server applies
// Unavailable around every store call (app/server), so that a database
// outage answers 503 unavailable everywhere, not 500.
func Unavailable(err error) error {
	var ce *chat.Error
	if err == nil || errors.As(err, &ce) || !unreachable(err) {
		return err
	}
	return &chat.Error{Code: ErrUnavailable.Code, Detail: ErrUnavailable.Detail, Err: err}
}

// unreachable reports whether err comes from the way to the database
// rather than from the database's answer.
func unreachable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08 is "connection exception"; 57P01-03 are a server
		// shutting down or starting up; 53300 is too many connections.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" ||
			pe.Code == "57P03" || pe.Code == "53300"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	// pgconn's own transport errors (a broken or busy connection, a
	// timeout) say whether they are safe to retry; that they can say so
	// is what marks them.
	var transport interface{ SafeToRetry() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &ce) || errors.As(err, &ne) || errors.As(err, &transport)
}
