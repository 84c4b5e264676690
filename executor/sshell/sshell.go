// Package sshell is the serverless shell (deliverable §4): a shell command
// runs as a cloud function, the registered executor function "sshell.run",
// which starts `sh -c CMD` in a fresh working directory and streams its
// output back through the DSO while it runs.
//
// # Streams and pipes
//
// The output travels in DSO Pipe objects (bounded FIFO queues, so a
// command that writes faster than the client reads is slowed down, not
// buffered without bound). Each function puts its stderr, and its stdout
// unless that goes to the next stage of a pipeline, into its own stream
// pipe as chunks [fd, bytes] in the order the command wrote them per fd,
// and closes the stream when the command has exited; the client (Run)
// takes the chunks as they come and writes them to its own stdout and
// stderr. A pipeline `cmdA | cmdB` (Split; only a plain pipeline of
// simple stages is split, see SplitPipeline) runs as one function per
// stage: stage i puts its stdout as byte chunks into a data pipe that
// stage i+1 takes its stdin from; closing the data pipe is the end of
// file. When a stage exits it closes its input pipe, so an upstream stage
// that still writes (`seq 1 1000000 | head -n 2`) fails its next put and
// gets EPIPE, as in a local shell.
//
// # Object commands
//
// Inside the function the object commands are on the PATH under their own
// names (`counter -n c increment -i 5`, `barrier -n b await -p 100`, `map
// -n m mergeAll a=1`): Tools names them, and the function links each name
// to this process's executable in a temporary directory put first on the
// PATH; the executable's main must dispatch on the name it is called by
// (cmd/blossom does). BLOSSOM_ENDPOINTS is the executor's DSO cluster.
package sshell

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/executor"
)

// Command is one invocation of "sshell.run".
type Command struct {
	// Cmd is given to sh -c.
	Cmd string
	// Stream is the key of the Pipe the function puts its output into
	// ([fd, bytes] chunks) and closes at the end.
	Stream string
	// Stdin, if set, is the key of a Pipe of byte chunks the command
	// reads as its stdin until the pipe is closed; the function closes it
	// when the command exits.
	Stdin string
	// Stdout, if set, is the key of a Pipe the command's stdout goes to
	// as byte chunks (instead of Stream); the function closes it at the
	// end.
	Stdout string
	// Files are written into the working directory before the command
	// starts (sshell -f FILE), by base name.
	Files map[string][]byte
	// Stage is the index of the command in its pipeline, in
	// $BLOSSOM_SSHELL_STAGE.
	Stage int
}

// Exit is the outcome of a command that ran.
type Exit struct {
	// Code is the exit status of sh (128+n for a signal n).
	Code int
}

// PipeCapacity is the capacity, in chunks, of the stream and data pipes.
const PipeCapacity = 64

// chunkSize bounds the bytes of one chunk.
const chunkSize = 32 << 10

// Stdout and Stderr are the fds of stream chunks.
const (
	Stdout = 1
	Stderr = 2
)

// Tools names the object commands put on the PATH of commands; the
// executable that registers the function sets it at init time (before
// any invocation).
var Tools []string

// Run is the registered function "sshell.run".
var Run = executor.Register("sshell.run", run)

var bin struct {
	once sync.Once
	dir  string
	err  error
}

// toolDir returns the directory of links to this executable named Tools:
// made once per executable in the user's cache directory (private to the
// user, shared by the processes of one binary, so that none leaves a
// directory behind), or per process in the temporary directory when
// there is no cache directory.
func toolDir() (string, error) {
	bin.once.Do(func() {
		if len(Tools) == 0 {
			return
		}
		exe, err := os.Executable()
		if err != nil {
			bin.err = err
			return
		}
		if cache, err := os.UserCacheDir(); err == nil {
			h := sha256.Sum256([]byte(exe + "\x00" + strings.Join(Tools, "\x00")))
			final := filepath.Join(cache, "blossom", "sshell-bin-"+hex.EncodeToString(h[:8]))
			if linksTo(final, exe) {
				bin.dir = final
				return
			}
			if err := os.MkdirAll(filepath.Dir(final), 0o700); err == nil {
				if d, err := makeLinks(filepath.Dir(final), exe); err == nil {
					// Another process may have made it first: then
					// the rename fails and its links serve.
					if os.Rename(d, final) == nil || linksTo(final, exe) {
						os.RemoveAll(d)
						bin.dir = final
						return
					}
					os.RemoveAll(d)
				}
			}
		}
		bin.dir, bin.err = makeLinks("", exe)
	})
	return bin.dir, bin.err
}

// makeLinks makes a new directory in parent (default the temporary
// directory) of links named Tools to exe.
func makeLinks(parent, exe string) (string, error) {
	d, err := os.MkdirTemp(parent, "sshell-bin-")
	if err != nil {
		return "", err
	}
	for _, t := range Tools {
		if err := os.Symlink(exe, filepath.Join(d, t)); err != nil {
			os.RemoveAll(d)
			return "", err
		}
	}
	return d, nil
}

// linksTo reports whether dir holds a link named each of Tools to exe.
func linksTo(dir, exe string) bool {
	for _, t := range Tools {
		if l, err := os.Readlink(filepath.Join(dir, t)); err != nil || l != exe {
			return false
		}
	}
	return true
}

func run(ctx context.Context, c Command) (Exit, error) {
	if c.Cmd == "" || c.Stream == "" {
		return Exit{}, executor.Permanent(errors.New("sshell: a command and a stream are required"))
	}
	info, _ := executor.InvocationOf(ctx)
	cl, err := executor.DSO(ctx)
	if err != nil {
		return Exit{}, err
	}
	stream := dso.NewPipe(cl, c.Stream, PipeCapacity)
	defer stream.Close(context.WithoutCancel(ctx))
	tools, err := toolDir()
	if err != nil {
		return Exit{}, fmt.Errorf("sshell: the object commands: %w", err)
	}
	wd, err := os.MkdirTemp("", "sshell-")
	if err != nil {
		return Exit{}, err
	}
	defer os.RemoveAll(wd)
	for name, b := range c.Files {
		if name != filepath.Base(name) || name == "." || name == ".." {
			return Exit{}, executor.Permanent(fmt.Errorf("sshell: file name %q is not a base name", name))
		}
		if err := os.WriteFile(filepath.Join(wd, name), b, 0o644); err != nil {
			return Exit{}, err
		}
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", c.Cmd)
	cmd.Dir = wd
	path := os.Getenv("PATH")
	if tools != "" {
		path = tools + string(os.PathListSeparator) + path
	}
	var env []string
	for _, kv := range os.Environ() {
		// A worker's marker would turn the object commands into workers.
		if !strings.HasPrefix(kv, executor.EnvWorker+"=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PATH="+path, "BLOSSOM_ENDPOINTS="+strings.Join(info.DSO, ","),
		"BLOSSOM_SSHELL_ID="+info.ID, fmt.Sprint("BLOSSOM_SSHELL_STAGE=", c.Stage))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	// forward copies r to the pipe as chunks (tagged with fd if tag),
	// until r ends; on a failed put it closes r so that the writer gets
	// EPIPE.
	forward := func(r io.ReadCloser, p dso.Pipe, fd int, tag bool) {
		buf := make([]byte, chunkSize)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				b := append([]byte(nil), buf[:n]...)
				var v any = b
				if tag {
					v = []any{int64(fd), b}
				}
				if perr := p.Put(ctx, v); perr != nil {
					if !errors.Is(perr, dso.ErrClosed) {
						fail(perr)
					}
					r.Close()
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	outR, err := cmd.StdoutPipe()
	if err != nil {
		return Exit{}, err
	}
	errR, err := cmd.StderrPipe()
	if err != nil {
		return Exit{}, err
	}
	var in dso.Pipe
	var inW io.WriteCloser
	if c.Stdin != "" {
		in = dso.NewPipe(cl, c.Stdin, PipeCapacity)
		if inW, err = cmd.StdinPipe(); err != nil {
			return Exit{}, err
		}
	}
	if err := cmd.Start(); err != nil {
		return Exit{}, err
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		if c.Stdout == "" {
			forward(outR, stream, Stdout, true)
			return
		}
		out := dso.NewPipe(cl, c.Stdout, PipeCapacity)
		forward(outR, out, Stdout, false)
		out.Close(context.WithoutCancel(ctx)) // end of file downstream
	}()
	go func() {
		defer wg.Done()
		forward(errR, stream, Stderr, true)
	}()
	if inW != nil {
		go feed(ctx, in, inW, fail)
	}
	// Wait after the forwarders have read everything: cmd.Wait closes the
	// pipes' read ends.
	wg.Wait()
	werr := cmd.Wait()
	if c.Stdin != "" {
		// The upstream stage learns that nobody reads any more.
		in.Close(context.WithoutCancel(ctx))
	}
	if firstErr != nil {
		return Exit{}, firstErr
	}
	var ee *exec.ExitError
	switch {
	case werr == nil:
		return Exit{}, nil
	case ctx.Err() != nil:
		return Exit{}, ctx.Err()
	case errors.As(werr, &ee):
		code := ee.ExitCode()
		if code < 0 { // killed by a signal
			code = 128 + signalOf(ee)
		}
		return Exit{Code: code}, nil
	}
	return Exit{}, werr
}

// feed writes the chunks of p to w until p is closed, then closes w.
func feed(ctx context.Context, p dso.Pipe, w io.WriteCloser, fail func(error)) {
	defer w.Close()
	for {
		v, err := p.Take(ctx)
		if err != nil {
			if !errors.Is(err, dso.ErrClosed) && ctx.Err() == nil {
				fail(err)
			}
			return
		}
		b, ok := v.([]byte)
		if !ok {
			fail(fmt.Errorf("sshell: a chunk of %s is %T, not bytes", p.Ref(), v))
			return
		}
		if _, err := w.Write(b); err != nil {
			return // the command does not read any more
		}
	}
}
