package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// tmpPrefix starts the name of a file Dir.Put is still writing. CheckKey
// refuses any name starting with ".", so no key can name a temp file, and
// Open and Walk never see one.
const tmpPrefix = ".tmp-"

// Dir keeps blobs as files under a directory: key "ab/cd/x" is the file
// dir/ab/cd/x. Files and folders are private to the process's user
// (0600, 0700).
//
// A key can't be both a blob and a prefix of another key ("a" and "a/b"):
// Put of the second fails. Delete leaves emptied folders in place, since
// removing one could race with a Put creating a file in it.
type Dir struct {
	path string
}

var _ Store = (*Dir)(nil)

// OpenDir opens the blob directory at path, creating it (0700) if needed,
// and removes the temp files of Puts a crash interrupted.
func OpenDir(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("blob: open dir: empty path")
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("blob: open dir: %w", err)
	}
	err := filepath.WalkDir(path, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() && strings.HasPrefix(de.Name(), tmpPrefix) {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("blob: open dir: remove leftover temp files: %w", err)
	}
	return &Dir{path: filepath.Clean(path)}, nil
}

// ReadDir opens the blobs under path for reading alongside the process
// that keeps them (a backup while the server runs): unlike OpenDir it
// neither creates the folder nor removes temp files, which may be that
// process's Puts in progress.
func ReadDir(path string) (*Dir, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("blob: read dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("blob: read dir: %s is not a folder", path)
	}
	return &Dir{path: filepath.Clean(path)}, nil
}

// Path returns the directory the blobs are under.
func (d *Dir) Path() string { return d.path }

func (d *Dir) file(key string) string {
	return filepath.Join(d.path, filepath.FromSlash(key))
}

// Put writes the blob to a temp file beside its final path, then makes it
// durable before it becomes visible:
//
//  1. fsync the temp file, so its bytes are on disk;
//  2. rename it over the key's path, atomically, so a reader opens the
//     old file or the new one, whole, never a part;
//  3. fsync the folder, so the rename itself is on disk.
//
// Only then does Put return nil. A crash before step 2 leaves a temp file
// (OpenDir removes it); a crash between 2 and 3 leaves the old blob or the
// new, whole, and Put has not yet returned. Folders Put creates for the
// key are fsynced in their parents too, before the file is written. If
// the last fsync fails, Put returns its error though the new blob is
// already visible: the caller must not rely on it, and a later Put of the
// key or a Delete settles it.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := d.put(ctx, key, r, size); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, err)
	}
	return nil
}

func (d *Dir) put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	if err := CheckKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("negative size %d", size)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	final := d.file(key)
	folder := filepath.Dir(final)
	if err := d.mkdirs(folder); err != nil {
		return err
	}
	f, err := os.CreateTemp(folder, tmpPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	src := newExactReader(ctxReader{ctx, r}, size)
	if _, err := io.Copy(f, src); err != nil {
		if src.err != nil {
			return src.err // the reader's fault, not the file's
		}
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// A cancelled Put stores nothing, even this late.
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return err
	}
	return syncDir(folder)
}

// mkdirs creates folder and its missing parents below d.path, fsyncing
// each new folder's parent so the new entry is durable.
func (d *Dir) mkdirs(folder string) error {
	if fi, err := os.Stat(folder); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is a blob, not a folder", folder)
		}
		return nil
	}
	if folder == d.path || len(folder) <= len(d.path) {
		return os.MkdirAll(folder, 0o700)
	}
	if err := d.mkdirs(filepath.Dir(folder)); err != nil {
		return err
	}
	if err := os.Mkdir(folder, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // a concurrent Put made it
		}
		return err
	}
	return syncDir(filepath.Dir(folder))
}

// notDir is the error of opening "a/b" when "a" is a blob: no such blob.
const notDir = syscall.ENOTDIR

func syncDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}

// Open opens the blob's file. Returns ErrNotFound when absent.
func (d *Dir) Open(ctx context.Context, key string) (Object, error) {
	o, err := d.open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("blob: open %q: %w", key, err)
	}
	return o, nil
}

func (d *Dir) open(ctx context.Context, key string) (Object, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(d.file(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, notDir) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, ErrNotFound // a folder of other keys
	}
	return fileObject{f, fi.Size()}, nil
}

// fileObject is a blob's open file; blobs are immutable (a Put replaces
// the file, never writes into it), so its size is fixed.
type fileObject struct {
	*os.File
	size int64
}

func (o fileObject) Size() int64 { return o.size }

// Delete removes the blob's file and fsyncs its folder; nil when it was
// already absent.
func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := d.delete(ctx, key); err != nil {
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	return nil
}

func (d *Dir) delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := d.file(key)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, notDir) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return nil // a folder of other keys, not a blob
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return syncDir(filepath.Dir(p))
}

// Walk calls fn for every blob under the directory, skipping temp files
// and anything else whose name is not a valid key.
func (d *Dir) Walk(ctx context.Context, fn func(key string, size int64) error) error {
	var fnErr error
	err := filepath.WalkDir(d.path, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != d.path {
				return nil // removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !de.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(d.path, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if CheckKey(key) != nil {
			return nil
		}
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted since listed
		}
		if err != nil {
			return err
		}
		if err := fn(key, fi.Size()); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("blob: walk %s: %w", d.path, err)
	}
	return nil
}

// ctxReader ends a read loop once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
