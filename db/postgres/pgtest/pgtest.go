// Package pgtest gives each test a PostgreSQL schema of its own, so that
// tests (and test packages) can share one database and run in parallel.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points the tests at a database, e.g.
// postgres://confab:confab@127.0.0.1:5432/confab_test?sslmode=disable.
// The role must be allowed to create schemas in it.
const EnvURL = "CONFAB_TEST_DATABASE_URL"

// URL returns the URL of CONFAB_TEST_DATABASE_URL with search_path set to
// a new, empty schema, dropped (with everything in it) when tb ends. Close
// what uses it in a Cleanup registered after this call, or before tb ends.
//
// Without the variable tb is skipped, except under CI=true, where it fails:
// CI must never pass by skipping.
func URL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		msg := "PostgreSQL tests need " + EnvURL + ", e.g. " + EnvURL +
			"='postgres://confab:confab@127.0.0.1:5432/confab_test?sslmode=disable'"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg + " (CI=true: not skipping)")
		}
		tb.Skip(msg)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Not the error itself: it would print the password.
		tb.Fatal(EnvURL + " is not a postgres:// URL")
	}
	var b [8]byte
	rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema) // sent as a run-time parameter of every connection
	u.RawQuery = q.Encode()
	return u.String()
}
