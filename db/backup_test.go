package db_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/confab/confab/db"
)

func TestBackup_CopyHoldsCommittedRowsAndNoPartialFile(t *testing.T) {
	ctx := context.Background()
	s, path := mustOpenDB(t)
	alice, bob := mustUser(t, s, "alice"), mustUser(t, s, "bob")
	conv := mustConversation(t, s, alice, bob)
	id := mustSend(t, s, alice, conv, "kept in the copy")

	dst := filepath.Join(t.TempDir(), "copy.db")
	n, err := db.Backup(ctx, path, dst)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil || fi.Size() != n || n == 0 {
		t.Fatalf("Backup returned %d bytes; the copy: %v, %v", n, fi, err)
	}
	if m, _ := filepath.Glob(dst + ".partial-*"); len(m) > 0 {
		t.Errorf("left behind: %v", m)
	}
	c, err := db.OpenNoMigrate(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var content string
	if err := c.DB().QueryRow(`SELECT content FROM messages WHERE id = ?`, id).Scan(&content); err != nil || content != "kept in the copy" {
		t.Fatalf("the copy's message %d: %q, %v", id, content, err)
	}
}

func TestBackup_Refusals(t *testing.T) {
	ctx := context.Background()
	_, path := mustOpenDB(t)
	dir := t.TempDir()

	taken := filepath.Join(dir, "taken.db")
	os.WriteFile(taken, []byte("precious"), 0o600)
	if _, err := db.Backup(ctx, path, taken); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("an existing destination: %v", err)
	}
	if b, _ := os.ReadFile(taken); string(b) != "precious" {
		t.Error("the existing file was overwritten")
	}

	if _, err := db.Backup(ctx, filepath.Join(dir, "missing.db"), filepath.Join(dir, "a.db")); err == nil || !strings.Contains(err.Error(), "no database at") {
		t.Errorf("a missing source: %v", err)
	}

	// A copy that fails midway (here: its folder does not exist) leaves
	// nothing behind.
	noDir := filepath.Join(dir, "absent", "copy.db")
	if _, err := db.Backup(ctx, path, noDir); err == nil {
		t.Error("a copy into a missing folder succeeded")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*partial*")); len(m) > 0 {
		t.Errorf("left behind: %v", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.db")); err == nil {
		t.Error("a backup of a missing database created its destination")
	}
}
