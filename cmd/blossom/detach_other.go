//go:build !unix

package main

import (
	"errors"
	"os/exec"
	"runtime"
)

// detach fails: starting a command in a session of its own (sshell
// --async) is implemented on Unix systems only.
func detach(*exec.Cmd) error {
	return errors.New("sshell --async starts the command in a session of its own, which blossom does on Unix systems only, not on " + runtime.GOOS)
}
