//go:build race

package ws_test

// raceEnabled is set under the race detector, whose sync.Pool drops
// items at random.
const raceEnabled = true
