//go:build !linux

package grpcapp

import (
	"os/exec"
	"syscall"
)

// detach puts a subprocess in its own process group, so that a terminal's
// Ctrl-C reaches only the runner.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
