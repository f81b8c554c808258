// Package systemtest holds Confab's system tests: they build the confab
// binary from the module root exactly as the Dockerfile does and start
// real confab processes (on real SQLite files, or one Postgres database and
// a real redis-server for several nodes), then kill, stop and restart them
// and check what a user would notice. The deploy files (Dockerfile,
// fly.toml, render.yaml) are checked here too, against the server.
//
// Outside its tests the package offers what other packages' process tests
// share: BuildBinary, Start and Proc. Every test that builds the binary
// skips under -short; CI runs them all.
package systemtest
