//go:build race

package api_test

// raceDetector says the tests run under the race detector, where SQLite
// (Go code, instrumented) is about ten times slower.
const raceDetector = true
