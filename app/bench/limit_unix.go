//go:build unix

package bench

import "syscall"

// raiseFileLimit raises the soft limit of open files towards want, within
// the hard limit, and returns the limit in force.
func raiseFileLimit(want uint64) (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < want && l.Cur < l.Max {
		n := l
		n.Cur = min(want, l.Max)
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n) == nil {
			l = n
		}
	}
	return l.Cur, nil
}
