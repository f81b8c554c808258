//go:build !unix

package cli

import "errors"

// runAs is RUN_AS, which needs a Unix system.
func runAs(uid, gid int, dir string) error {
	return errors.New("RUN_AS is supported on Unix systems only")
}
