package db

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the SQLite database at src to dst
// while a server may keep writing to src, and returns the copy's size.
// The copy is made under a temporary name in dst's folder, checked with
// PRAGMA integrity_check and synced, and only then renamed to dst (and the
// folder synced), so that dst is either whole and on disk or absent: on any
// failure the partial copy is removed. dst must not exist.
func Backup(ctx context.Context, src, dst string) (int64, error) {
	if _, err := os.Stat(src); err != nil {
		return 0, fmt.Errorf("no database at %s: %w", src, err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return 0, fmt.Errorf("%s already exists; choose a new path", dst)
	}
	store, err := OpenNoMigrate(src)
	if err != nil {
		return 0, err
	}
	tmp := fmt.Sprintf("%s.partial-%x", dst, randomSuffix())
	defer removeDB(tmp)
	err = store.Backup(ctx, tmp)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if err := checkIntegrity(ctx, tmp); err != nil {
		return 0, err
	}
	if err := syncPath(tmp); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return 0, err
	}
	if err := syncPath(filepath.Dir(dst)); err != nil {
		return 0, err
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func randomSuffix() []byte {
	b := make([]byte, 6)
	rand.Read(b)
	return b
}

// checkIntegrity runs PRAGMA integrity_check on the database at path.
func checkIntegrity(ctx context.Context, path string) error {
	s, err := OpenNoMigrate(path)
	if err != nil {
		return err
	}
	defer s.Close()
	var res string
	if err := s.read.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("integrity check of the copy failed: %s", res)
	}
	return nil
}

// syncPath flushes a file, or a folder's entries, to disk.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// removeDB removes an SQLite file with its -wal and -shm companions.
func removeDB(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Remove(p)
	}
}
