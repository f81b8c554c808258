//go:build !unix

package db_test

import (
	"testing"
	"time"
)

// cpuTime is not measured here: cpu-ns/op then reads 0.
func cpuTime(testing.TB) time.Duration { return 0 }
