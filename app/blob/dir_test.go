package blob_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confab/confab/app/blob"
	"github.com/confab/confab/app/blob/blobtest"
)

func TestDir(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		return mustOpenDir(t, t.TempDir())
	})
}

func mustOpenDir(t *testing.T, path string) *blob.Dir {
	t.Helper()
	d, err := blob.OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDir_CrashMidPut leaves a Put blocked in its reader, as a crash
// would leave it: its temp file is never visible, and OpenDir, as the
// next start calls it, removes it.
func TestDir_CrashMidPut(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir()
	d := mustOpenDir(t, path)
	mustPutDir(t, d, "ab/kept", "kept")

	release := make(chan struct{})
	r := io.MultiReader(strings.NewReader("half of it"), &blockingReader{release})
	done := make(chan error, 1)
	go func() { done <- d.Put(ctx, "ab/crashed", r, 100) }()
	defer func() {
		close(release)
		if err := <-done; err == nil {
			t.Error("Put whose reader failed: no error")
		}
	}()

	tmp := waitForTemp(t, filepath.Join(path, "ab"))
	if _, err := d.Open(ctx, "ab/crashed"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Open during Put = %v, want ErrNotFound", err)
	}
	if got := walkKeys(t, d); got != "ab/kept" {
		t.Errorf("Walk during Put = %q, want only ab/kept", got)
	}

	d2 := mustOpenDir(t, path) // the restart
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenDir left the temp file %s: %v", tmp, err)
	}
	if got := walkKeys(t, d2); got != "ab/kept" {
		t.Errorf("Walk after restart = %q, want only ab/kept", got)
	}
}

// TestDir_LeftoverTempFiles puts temp files by hand, in the root and in
// a folder: Walk and Open skip them, OpenDir removes them.
func TestDir_LeftoverTempFiles(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir()
	d := mustOpenDir(t, path)
	mustPutDir(t, d, "x/y", "blob")
	leftovers := []string{filepath.Join(path, ".tmp-123"), filepath.Join(path, "x", ".tmp-456")}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := walkKeys(t, d); got != "x/y" {
		t.Errorf("Walk = %q, want only x/y", got)
	}
	if _, err := d.Open(ctx, "x/.tmp-456"); !errors.Is(err, blob.ErrBadKey) {
		t.Errorf("Open of a temp file = %v, want ErrBadKey", err)
	}
	mustOpenDir(t, path)
	for _, p := range leftovers {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("OpenDir left %s: %v", p, err)
		}
	}
	if got := walkKeys(t, d); got != "x/y" {
		t.Errorf("Walk after OpenDir = %q, want only x/y", got)
	}
}

// TestDir_Private checks blobs are readable by the process's user only.
func TestDir_Private(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blobs")
	d := mustOpenDir(t, path)
	mustPutDir(t, d, "ab/cd/x", "secret attachment")
	for p, want := range map[string]fs.FileMode{
		path:                           0o700 | fs.ModeDir,
		filepath.Join(path, "ab"):      0o700 | fs.ModeDir,
		filepath.Join(path, "ab/cd"):   0o700 | fs.ModeDir,
		filepath.Join(path, "ab/cd/x"): 0o600,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	if d.Path() != path {
		t.Errorf("Path() = %q, want %q", d.Path(), path)
	}
}

// TestDir_StaysInside checks a refused key writes nothing, anywhere.
func TestDir_StaysInside(t *testing.T) {
	parent := t.TempDir()
	d := mustOpenDir(t, filepath.Join(parent, "blobs"))
	for _, key := range []string{"../escaped", "/escaped", "a/../../escaped"} {
		if err := d.Put(context.Background(), key, strings.NewReader("x"), 1); !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("Put(%q) = %v, want ErrBadKey", key, err)
		}
	}
	if _, err := os.Stat(filepath.Join(parent, "escaped")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused key wrote outside the folder: %v", err)
	}
}

// TestDir_KeyUnderBlob checks a key below another key's blob fails
// cleanly: a file can't also be a folder.
func TestDir_KeyUnderBlob(t *testing.T) {
	d := mustOpenDir(t, t.TempDir())
	mustPutDir(t, d, "a", "blob")
	err := d.Put(context.Background(), "a/b", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), `"a/b"`) {
		t.Errorf("Put(a/b) under blob a = %v, want an error naming the key", err)
	}
	if _, err := d.Open(context.Background(), "a/b"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Open(a/b) = %v, want ErrNotFound", err)
	}
	if err := d.Delete(context.Background(), "a/b"); err != nil {
		t.Errorf("Delete(a/b) = %v, want nil", err)
	}
}

func mustPutDir(t *testing.T, d *blob.Dir, key, data string) {
	t.Helper()
	if err := d.Put(context.Background(), key, strings.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

// walkKeys returns the keys Walk lists, sorted, joined by spaces.
func walkKeys(t *testing.T, s blob.Store) string {
	t.Helper()
	var keys []string
	err := s.Walk(context.Background(), func(key string, _ int64) error {
		keys = append(keys, key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return strings.Join(keys, " ")
}

// waitForTemp waits for a temp file to appear in folder and returns its
// path.
func waitForTemp(t *testing.T, folder string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		matches, _ := filepath.Glob(filepath.Join(folder, ".tmp-*"))
		if len(matches) == 1 {
			return matches[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no temp file in %s: %v", folder, matches)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blockingReader blocks until release is closed, then fails, as the
// client of a crashed server never finishes.
type blockingReader struct{ release chan struct{} }

func (b *blockingReader) Read([]byte) (int, error) {
	<-b.release
	return 0, errors.New("abandoned")
}
