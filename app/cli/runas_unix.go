//go:build unix

package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// runAs is RUN_AS: started as root, confab gives the database folder (and
// the files in it) to uid:gid and becomes that user before it opens
// anything, so a volume that a platform mounted owned by root just works
// and the server never serves as root. Already running as uid, it does
// nothing; as another user, it refuses.
func runAs(uid, gid int, dir string) error {
	switch os.Getuid() {
	case uid:
		return nil
	case 0:
	default:
		return fmt.Errorf("RUN_AS=%d:%d needs the server to start as root or as that user (it runs as uid %d)", uid, gid, os.Getuid())
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("RUN_AS: %w", err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("RUN_AS: give %s to %d:%d: %w", dir, uid, gid, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("RUN_AS: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := os.Chown(filepath.Join(dir, e.Name()), uid, gid); err != nil {
				return fmt.Errorf("RUN_AS: %w", err)
			}
		}
	}
	// Groups first, then the group, then the user: after Setuid there is
	// no way back. Go applies each to every thread of the process.
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("RUN_AS: setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("RUN_AS: setgid: %w", err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("RUN_AS: setuid: %w", err)
	}
	return nil
}
