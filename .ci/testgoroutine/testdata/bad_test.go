package bad

import (
	"sync"
	"testing"
)

func check(t *testing.T, v int) {
	t.Helper()
	if v != 1 {
		t.Fatalf("v = %d", v)
	}
}

type server struct{}

func (server) Send(tb testing.TB, s string) { tb.Helper() }

func TestBad(t *testing.T) {
	var wg sync.WaitGroup
	srv := server{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.Fatal("from a goroutine") // want
	}()
	<-done
	wg.Add(1)
	go func() {
		defer wg.Done()
		check(t, 2) // want
		func() {
			t.Skip("nested") // want
		}()
		srv.Send(t, "x")                    // want
		t.FailNow()                         // want
		t.Run("sub", func(t *testing.T) {}) // want
	}()
	wg.Go(func() {
		t.Fatalf("through WaitGroup.Go") // want
	})
	go check(t, 3) // want
	go func(tt *testing.T) {
		tt.SkipNow() // want
	}(t) // want: the test's t handed over
	wg.Wait()
}

func BenchmarkBad(b *testing.B) {
	go func() {
		helper(b) // want
	}()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			helper(b) // want
		}
	})
}

func helper(tb testing.TB) {
	go func() {
		var x struct{ Fatalf func(string, ...any) }
		x.Fatalf("any X.Fatalf counts") // want
	}()
	_ = tb
}
