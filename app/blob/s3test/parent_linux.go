package s3test

import (
	"os/exec"
	"runtime"
	"syscall"
)

// dieWithParent has the kernel kill cmd when the thread that starts it
// ends: the calling goroutine keeps its thread for good (it waits for
// cmd), so that is when the test process ends.
func dieWithParent(cmd *exec.Cmd) {
	runtime.LockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
