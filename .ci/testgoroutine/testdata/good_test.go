package good

import (
	"sync"
	"testing"
)

func TestGood(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t.Helper()
		t.Logf("%s may log", t.Name())
		t.Errorf("and report %d", 1)
		_ = t.TempDir()
		t.Cleanup(func() {})
		errs <- nil
	}()
	wg.Wait()
	if err := <-errs; err != nil {
		t.Fatal(err) // the test's own goroutine
	}
	// A t declared inside the goroutine is not the test's.
	go func() {
		t := struct{ Name string }{"x"}
		use(t)
	}()
	// A test's own subtest runs on its own goroutine.
	t.Run("sub", func(t *testing.T) {
		t.Fatal("allowed: the subtest's goroutine")
	})
	check(t) // not in a goroutine
}

func use(any) {}

func check(t *testing.T) { t.Helper() }
