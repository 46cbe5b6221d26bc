//go:build linux

package grpcapp

import (
	"os/exec"
	"syscall"
)

// detach puts a subprocess in its own process group, so that a terminal's
// Ctrl-C reaches only the runner, which then stops its servers in order; and
// asks the kernel to SIGTERM it if the runner dies, so that no server is
// orphaned.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
