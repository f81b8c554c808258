// Package blobtest is the behaviour suite every blob.Store passes: Dir
// and S3 run the same cases, so callers can rely on one contract.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confab/confab/app/blob"
)

// Run runs the suite on the stores open returns: a new, empty store for
// each subtest.
func Run(t *testing.T, open func(t *testing.T) blob.Store) {
	cases := []struct {
		name string
		test func(t *testing.T, s blob.Store)
	}{
		{"PutOpenRead", testPutOpenRead},
		{"EmptyBlob", testEmptyBlob},
		{"SeekRange", testSeekRange},
		{"ServeContentRange", testServeContent},
		{"ReplaceExisting", testReplace},
		{"OpenAbsent_NotFound", testOpenAbsent},
		{"DeleteTwice", testDeleteTwice},
		{"BadKeysRefused", testBadKeys},
		{"ReaderFails_NothingStored", testReaderFails},
		{"ReaderShort_NothingStored", testReaderShort},
		{"ReaderLong_NothingStored", testReaderLong},
		{"FailedReplace_KeepsOld", testFailedReplace},
		{"WalkListsAll", testWalk},
		{"WalkStopsAtError", testWalkStops},
		{"Large_Streamed", testLarge},
		{"ConcurrentPuts_DifferentKeys", testConcurrentKeys},
		{"ConcurrentPuts_SameKey", testConcurrentSameKey},
		{"CancelledContext", testCancelled},
		{"CancelMidPut", testCancelMidPut},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.test(t, open(t))
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, s blob.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(ctxT(t), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

// read returns the blob's bytes, or the error of opening or reading it.
func read(ctx context.Context, s blob.Store, key string) ([]byte, error) {
	o, err := s.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != o.Size() {
		return b, fmt.Errorf("read %d bytes, Size says %d", len(b), o.Size())
	}
	return b, nil
}

func mustRead(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	b, err := read(ctxT(t), s, key)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b
}

func mustNotFound(t *testing.T, s blob.Store, key string) {
	t.Helper()
	_, err := s.Open(ctxT(t), key)
	if !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Open(%q) = %v, want ErrNotFound", key, err)
	}
}

// walk returns every key with its size.
func walk(t *testing.T, s blob.Store) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	err := s.Walk(ctxT(t), func(key string, size int64) error {
		if _, dup := got[key]; dup {
			return fmt.Errorf("key %q twice", key)
		}
		got[key] = size
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return got
}

func testPutOpenRead(t *testing.T, s blob.Store) {
	data := []byte("hello, attachment")
	mustPut(t, s, "ab/cd/hello.txt", data)
	o, err := s.Open(ctxT(t), "ab/cd/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Size() != int64(len(data)) {
		t.Errorf("Size = %d, want %d", o.Size(), len(data))
	}
	got, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("read %q, want %q", got, data)
	}
}

func testEmptyBlob(t *testing.T, s blob.Store) {
	mustPut(t, s, "empty", nil)
	if got := mustRead(t, s, "empty"); len(got) != 0 {
		t.Errorf("read %q, want nothing", got)
	}
	if got := walk(t, s); len(got) != 1 || got["empty"] != 0 {
		t.Errorf("Walk = %v, want empty:0", got)
	}
}

// testSeekRange reads as http.ServeContent does: Seek to the end for the
// size, back to the start, then to each range's offset.
func testSeekRange(t *testing.T, s blob.Store) {
	data := pattern(1, 100_000)
	mustPut(t, s, "range", data)
	o, err := s.Open(ctxT(t), "range")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	end, err := o.Seek(0, io.SeekEnd)
	if err != nil || end != int64(len(data)) {
		t.Fatalf("Seek(0, End) = %d, %v; want %d", end, err, len(data))
	}
	if _, err := o.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ off, n int64 }{{0, 10}, {99_990, 10}, {5_000, 30_000}, {1, 1}, {70_000, 1}} {
		if _, err := o.Seek(r.off, io.SeekStart); err != nil {
			t.Fatalf("Seek(%d): %v", r.off, err)
		}
		got := make([]byte, r.n)
		if _, err := io.ReadFull(o, got); err != nil {
			t.Fatalf("read %d at %d: %v", r.n, r.off, err)
		}
		if want := data[r.off : r.off+r.n]; !bytes.Equal(got, want) {
			t.Errorf("bytes %d+%d differ", r.off, r.n)
		}
	}
	// Relative seek and reading on to the end.
	if _, err := o.Seek(-100, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(got, data[len(data)-100:]) {
		t.Errorf("tail: %d bytes, %v", len(got), err)
	}
}

// testServeContent serves Range requests from an Object through
// http.ServeContent, as the attachment download handler will.
func testServeContent(t *testing.T, s blob.Store) {
	data := pattern(9, 50_000)
	mustPut(t, s, "served.bin", data)
	for _, tt := range []struct {
		rng        string
		wantStatus int
		want       []byte
	}{
		{"", http.StatusOK, data},
		{"bytes=10-19", http.StatusPartialContent, data[10:20]},
		{"bytes=-100", http.StatusPartialContent, data[len(data)-100:]},
		{"bytes=49000-", http.StatusPartialContent, data[49000:]},
		{"bytes=60000-", http.StatusRequestedRangeNotSatisfiable, nil},
	} {
		o, err := s.Open(ctxT(t), "served.bin")
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodGet, "/served.bin", nil)
		if tt.rng != "" {
			req.Header.Set("Range", tt.rng)
		}
		rec := httptest.NewRecorder()
		http.ServeContent(rec, req, "served.bin", time.Time{}, o)
		o.Close()
		if rec.Code != tt.wantStatus {
			t.Errorf("Range %q: status %d, want %d", tt.rng, rec.Code, tt.wantStatus)
			continue
		}
		if tt.want != nil && !bytes.Equal(rec.Body.Bytes(), tt.want) {
			t.Errorf("Range %q: %d bytes, not the %d wanted", tt.rng, rec.Body.Len(), len(tt.want))
		}
	}
}

func testReplace(t *testing.T, s blob.Store) {
	mustPut(t, s, "k", []byte("old version"))
	mustPut(t, s, "k", []byte("new"))
	if got := mustRead(t, s, "k"); string(got) != "new" {
		t.Errorf("read %q, want new", got)
	}
	if got := walk(t, s); len(got) != 1 || got["k"] != 3 {
		t.Errorf("Walk = %v, want k:3", got)
	}
}

func testOpenAbsent(t *testing.T, s blob.Store) {
	mustNotFound(t, s, "absent")
	mustNotFound(t, s, "no/such/folder/x")
	mustPut(t, s, "folder/x", []byte("x"))
	mustNotFound(t, s, "folder") // a prefix of a key is no blob
}

func testDeleteTwice(t *testing.T, s blob.Store) {
	mustPut(t, s, "gone", []byte("x"))
	for i := range 2 {
		if err := s.Delete(ctxT(t), "gone"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	mustNotFound(t, s, "gone")
	if err := s.Delete(ctxT(t), "never/was"); err != nil {
		t.Errorf("Delete of a never-stored key: %v", err)
	}
	if got := walk(t, s); len(got) != 0 {
		t.Errorf("Walk = %v, want nothing", got)
	}
}

func testBadKeys(t *testing.T, s blob.Store) {
	ctx := ctxT(t)
	bad := []string{"../x", "/x", "a//b", "", strings.Repeat("a", 201), "Upper", "a/.tmp-x",
		".hidden", "a/", "a/../b", "a b", "a\x00b", "é"}
	for _, key := range bad {
		if err := s.Put(ctx, key, strings.NewReader("x"), 1); !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("Put(%q) = %v, want ErrBadKey", key, err)
		}
		if _, err := s.Open(ctx, key); !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("Open(%q) = %v, want ErrBadKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("Delete(%q) = %v, want ErrBadKey", key, err)
		}
	}
	if got := walk(t, s); len(got) != 0 {
		t.Errorf("Walk = %v after refused Puts, want nothing", got)
	}
	mustPut(t, s, strings.Repeat("a", 200), []byte("longest key"))
}

// failingReader yields n bytes, then fails with err.
type failingReader struct {
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	n := min(len(p), f.n)
	clear(p[:n])
	f.n -= n
	return n, nil
}

var errBoom = errors.New("boom: the client went away")

func testReaderFails(t *testing.T, s blob.Store) {
	err := s.Put(ctxT(t), "fails", &failingReader{n: 50_000, err: errBoom}, 100_000)
	if !errors.Is(err, errBoom) {
		t.Errorf("Put = %v, want the reader's error", err)
	}
	mustNotFound(t, s, "fails")
	if got := walk(t, s); len(got) != 0 {
		t.Errorf("Walk = %v, want nothing", got)
	}
}

func testReaderShort(t *testing.T, s blob.Store) {
	for _, n := range []int{0, 1, 99_999} {
		key := fmt.Sprint("short", n)
		if err := s.Put(ctxT(t), key, bytes.NewReader(pattern(2, n)), 100_000); err == nil {
			t.Errorf("Put of %d bytes as 100000: no error", n)
		}
		mustNotFound(t, s, key)
	}
	if got := walk(t, s); len(got) != 0 {
		t.Errorf("Walk = %v, want nothing", got)
	}
}

func testReaderLong(t *testing.T, s blob.Store) {
	for _, size := range []int64{0, 1, 99_999} {
		key := fmt.Sprint("long", size)
		if err := s.Put(ctxT(t), key, bytes.NewReader(pattern(3, 100_000)), size); err == nil {
			t.Errorf("Put of 100000 bytes as %d: no error", size)
		}
		mustNotFound(t, s, key)
	}
	if got := walk(t, s); len(got) != 0 {
		t.Errorf("Walk = %v, want nothing", got)
	}
}

func testFailedReplace(t *testing.T, s blob.Store) {
	old := pattern(4, 1000)
	mustPut(t, s, "keep", old)
	if err := s.Put(ctxT(t), "keep", &failingReader{n: 500, err: errBoom}, 1000); err == nil {
		t.Error("failing Put: no error")
	}
	if err := s.Put(ctxT(t), "keep", bytes.NewReader(pattern(5, 999)), 1000); err == nil {
		t.Error("short Put: no error")
	}
	if err := s.Put(ctxT(t), "keep", bytes.NewReader(pattern(5, 1001)), 1000); err == nil {
		t.Error("long Put: no error")
	}
	if got := mustRead(t, s, "keep"); !bytes.Equal(got, old) {
		t.Error("a failed Put changed the stored blob")
	}
}

func testWalk(t *testing.T, s blob.Store) {
	want := map[string]int64{"a": 1, "b/c": 22, "b/d/e.jpg": 333, "x-y_z.0": 4444}
	for k, n := range want {
		mustPut(t, s, k, pattern(6, int(n)))
	}
	mustPut(t, s, "deleted", []byte("x"))
	if err := s.Delete(ctxT(t), "deleted"); err != nil {
		t.Fatal(err)
	}
	got := walk(t, s)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Walk = %v, want %v", got, want)
	}
}

func testWalkStops(t *testing.T, s blob.Store) {
	for i := range 5 {
		mustPut(t, s, fmt.Sprint("k", i), []byte("x"))
	}
	stop := errors.New("enough")
	calls := 0
	err := s.Walk(ctxT(t), func(string, int64) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Walk = %v after %d calls, want fn's error after 1", err, calls)
	}
}

// testLarge streams 30 MiB through Put and Open, from a generator and
// into a hash, so the test never holds the blob, and checks the store
// did not either.
func testLarge(t *testing.T, s blob.Store) {
	const size = 30 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	in := sha256.New()
	if err := s.Put(ctxT(t), "large", io.TeeReader(newGenerator(7, size), in), size); err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(ctxT(t), "large")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Size() != size {
		t.Errorf("Size = %d, want %d", o.Size(), size)
	}
	out := sha256.New()
	n, err := io.Copy(out, o)
	if err != nil || n != size {
		t.Fatalf("read %d bytes, %v; want %d", n, err, size)
	}
	if !bytes.Equal(in.Sum(nil), out.Sum(nil)) {
		t.Error("read back other bytes than were put")
	}
	// Holding the blob whole would take at least 30 MiB; Dir allocates
	// none, S3 about 2 (the streaming signer and HTTP buffers).
	runtime.ReadMemStats(&after)
	if mib := (after.TotalAlloc - before.TotalAlloc) >> 20; mib >= 15 {
		t.Errorf("allocated %d MiB to put and read 30 MiB: the blob is held, not streamed", mib)
	}
}

func testConcurrentKeys(t *testing.T, s blob.Store) {
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 4 {
				key := fmt.Sprintf("w%d/k%d", i, j)
				data := pattern(i*10+j, 10_000+i*100+j)
				if err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
					t.Errorf("Put(%q): %v", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := walk(t, s)
	if len(got) != 32 {
		t.Errorf("Walk lists %d keys, want 32", len(got))
	}
	for i := range 8 {
		for j := range 4 {
			key := fmt.Sprintf("w%d/k%d", i, j)
			if b := mustRead(t, s, key); !bytes.Equal(b, pattern(i*10+j, 10_000+i*100+j)) {
				t.Errorf("%s: other bytes than were put", key)
			}
		}
	}
}

// testConcurrentSameKey puts 8 versions of one key at once, of different
// sizes, while readers check they always see one version whole.
func testConcurrentSameKey(t *testing.T, s blob.Store) {
	ctx := ctxT(t)
	versions := map[[32]byte]bool{}
	for i := range 8 {
		versions[sha256.Sum256(version(i))] = true
	}
	mustPut(t, s, "same", version(0))
	done := make(chan struct{})
	var readers, writers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-done:
					if n == 0 {
						t.Error("a reader never read")
					}
					return
				default:
				}
				b, err := read(ctx, s, "same")
				if err != nil {
					t.Errorf("read while putting: %v", err)
					return
				}
				if !versions[sha256.Sum256(b)] {
					t.Errorf("read %d bytes that are no version put", len(b))
					return
				}
			}
		})
	}
	for i := range 8 {
		writers.Go(func() {
			for range 3 {
				v := version(i)
				if err := s.Put(ctx, "same", bytes.NewReader(v), int64(len(v))); err != nil {
					t.Errorf("Put version %d: %v", i, err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(done)
	readers.Wait()
	if b := mustRead(t, s, "same"); !versions[sha256.Sum256(b)] {
		t.Error("the last version is none put")
	}
	if got := walk(t, s); len(got) != 1 {
		t.Errorf("Walk = %v, want one key", got)
	}
}

func version(i int) []byte { return pattern(100+i, 200_000+i*7919) }

func testCancelled(t *testing.T, s blob.Store) {
	mustPut(t, s, "there", []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := s.Put(ctx, "new", strings.NewReader("x"), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Put = %v, want context.Canceled", err)
	}
	if _, err := s.Open(ctx, "there"); !errors.Is(err, context.Canceled) {
		t.Errorf("Open = %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, "there"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete = %v, want context.Canceled", err)
	}
	if err := s.Walk(ctx, func(string, int64) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Walk = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancelled calls took %v", d)
	}
	mustNotFound(t, s, "new")
	mustRead(t, s, "there")
}

// testCancelMidPut cancels a Put whose reader would go on for a GiB.
func testCancelMidPut(t *testing.T, s blob.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &cancelAfter{r: newGenerator(8, 1<<30), n: 1 << 20, cancel: cancel}
	start := time.Now()
	err := s.Put(ctx, "cancelled", r, 1<<30)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled Put took %v", d)
	}
	mustNotFound(t, s, "cancelled")
}

// cancelAfter calls cancel once n bytes have been read, and reads on.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// pattern returns n bytes that differ with seed.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	io.ReadFull(newGenerator(seed, int64(n)), b)
	return b
}

// generator yields n pseudo-random bytes (xorshift), without holding them.
type generator struct {
	x    uint64
	pos  int64
	left int64
}

func newGenerator(seed int, n int64) *generator {
	return &generator{x: uint64(seed)*0x9E3779B97F4A7C15 + 1, left: n}
}

func (g *generator) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	for i := range p {
		if g.pos%8 == 0 {
			g.x ^= g.x << 13
			g.x ^= g.x >> 7
			g.x ^= g.x << 17
		}
		p[i] = byte(g.x >> (8 * (g.pos % 8)))
		g.pos++
	}
	g.left -= int64(len(p))
	return len(p), nil
}
