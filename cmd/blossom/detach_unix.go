//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// detach makes c start in a session of its own, so that it is not killed
// with this process's session (sshell --async).
func detach(c *exec.Cmd) error {
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return nil
}
