package sshell

import (
	"os/exec"
	"syscall"
)

// signalOf returns the signal that ended the process of ee, or 0.
func signalOf(ee *exec.ExitError) int {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return int(ws.Signal())
	}
	return 0
}
