package sshell

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/executor"
)

// Client is the DSO client Exec needs: calls, and the deletion of the
// pipes at the end (client.Client).
type Client interface {
	dso.Caller
	Delete(ctx context.Context, ref dso.Ref) (bool, error)
}

// Options change one Exec.
type Options struct {
	// Split runs each stage of a plain pipeline as its own function
	// (SplitPipeline); otherwise the whole command runs in one.
	Split bool
	// Files are copied into the working directory of every stage.
	Files map[string][]byte
	// ID names the run's pipes (sshell/ID/...) and keys its invocations;
	// default a random one.
	ID string
	// Stdout and Stderr receive the output as it arrives, in whole lines
	// (a partial line waits for its newline or the end), each write at
	// most 4096 bytes when the lines allow, so that the lines of
	// concurrent runs writing to one pipe do not mix (nil: discarded).
	Stdout, Stderr io.Writer
}

// NewID returns a random run id.
func NewID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Exec runs cmd as cloud functions on the executor of ctx, writes their
// output to o.Stdout and o.Stderr while they run, and returns the exit
// status of the last stage (as sh does without pipefail). An error means
// a function could not run or failed (not a non-zero exit status). Each
// function runs once: a retried command would repeat its side effects.
func Exec(ctx context.Context, cl Client, cmd string, o Options) (int, error) {
	if o.ID == "" {
		o.ID = NewID()
	}
	stages := []string{cmd}
	if o.Split {
		stages = SplitPipeline(cmd)
	}
	n := len(stages)
	streams := make([]dso.Pipe, n)
	data := make([]dso.Pipe, n-1) // data[i] carries stage i's stdout to stage i+1
	for i := range streams {
		streams[i] = dso.NewPipe(cl, fmt.Sprintf("sshell/%s/stream/%d", o.ID, i), PipeCapacity)
	}
	for i := range data {
		data[i] = dso.NewPipe(cl, fmt.Sprintf("sshell/%s/pipe/%d", o.ID, i), PipeCapacity)
	}
	defer func() {
		bg := context.WithoutCancel(ctx)
		for _, p := range append(streams, data...) {
			cl.Delete(bg, p.Ref())
		}
	}()
	var wmu sync.Mutex
	futures := make([]*executor.Future[Exit], n)
	var wg sync.WaitGroup
	var emu sync.Mutex
	var errs []error
	for i, s := range stages {
		c := Command{Cmd: s, Stream: streams[i].Ref().Key, Files: o.Files, Stage: i}
		if i > 0 {
			c.Stdin = data[i-1].Ref().Key
		}
		if i < n-1 {
			c.Stdout = data[i].Ref().Key
		}
		key := o.ID
		if n > 1 {
			key = fmt.Sprintf("%s/%d", o.ID, i)
		}
		f := executor.Go(ctx, Run, c, executor.WithKey(key), executor.WithRetry(executor.RetryPolicy{Attempts: 1}))
		futures[i] = f
		wg.Add(2)
		out := &lineWriter{mu: &wmu, w: o.Stdout}
		errw := &lineWriter{mu: &wmu, w: o.Stderr}
		go func() { // the stream, until the function closes it
			defer wg.Done()
			defer errw.Flush()
			defer out.Flush()
			for {
				v, err := streams[i].Take(ctx)
				if err != nil {
					if !errors.Is(err, dso.ErrClosed) {
						emu.Lock()
						errs = append(errs, fmt.Errorf("stage %d: output: %w", i, err))
						emu.Unlock()
					}
					return
				}
				fd, b, err := chunk(v)
				if err != nil {
					emu.Lock()
					errs = append(errs, err)
					emu.Unlock()
					return
				}
				if fd == Stdout {
					out.Write(b)
				} else {
					errw.Write(b)
				}
			}
		}()
		go func() { // a function that failed closes nothing: close for it
			defer wg.Done()
			if err := f.Join(); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
				bg := context.WithoutCancel(ctx)
				streams[i].Close(bg)
				if i > 0 {
					data[i-1].Close(bg)
				}
				if i < n-1 {
					data[i].Close(bg)
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return -1, errors.Join(errs...)
	}
	ex, err := futures[n-1].Get()
	return ex.Code, err
}

// chunk decodes a stream chunk [fd, bytes].
func chunk(v any) (int64, []byte, error) {
	l, ok := v.([]any)
	if ok && len(l) == 2 {
		fd, ok1 := l[0].(int64)
		b, ok2 := l[1].([]byte)
		if ok1 && ok2 && (fd == Stdout || fd == Stderr) {
			return fd, b, nil
		}
	}
	return 0, nil, fmt.Errorf("sshell: a stream chunk is %v, not [1|2, bytes]", v)
}
