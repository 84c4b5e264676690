// Package simtest runs simulation sweeps for protocol tests: many seeds of
// one configuration, each checked for the order contract, for the atomic
// multicast properties in multicast runs (simnet.Config.Groups), for liveness once
// the faults heal, and for linearizability with Porcupine. A protocol that
// declares a weaker order contract (protocols.RegisterContract) is checked
// against that one instead (contract.go: CheckSequential, CheckWeak). Every
// failure names its seed, and a linearizability violation leaves
// Porcupine's HTML visualization in the temporary directory.
package simtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/simnet"
)

// LinTimeout bounds each Porcupine check. A check that times out is a
// failure (Unknown is never a pass); keep sweep histories small enough.
const LinTimeout = 30 * time.Second

// Check runs cfg once and returns the result with an error naming the seed
// and the first property that failed: the run itself, the order contract,
// liveness after the fault window, or linearizability.
//
// A protocol registered with a contract weaker than Linearizable
// (protocols.RegisterContract) is checked against that contract instead
// (ForContract, CheckContract): liveness, then CheckSequential or
// CheckWeak.
func Check(cfg simnet.Config) (*simnet.Result, error) {
	contract := protocols.Linearizable
	if c, k, err := ForContract(cfg); err == nil {
		cfg, contract = c, k
	}
	res, err := simnet.Run(cfg)
	if err != nil {
		return nil, fmt.Errorf("seed %d: %w", cfg.Seed, err)
	}
	if contract != protocols.Linearizable {
		if err := res.LivenessError(); err != nil {
			return res, fmt.Errorf("%w (faults %s: %v)", err, res.Faults, res.FaultLog)
		}
		if err := CheckContract(res, contract); err != nil {
			return res, fmt.Errorf("%s contract: %w (faults %s)", contract, err, res.Faults)
		}
		return res, nil
	}
	if err := res.OrderError(); err != nil {
		return res, err
	}
	if err := res.MulticastError(); err != nil {
		return res, fmt.Errorf("%w (faults %s: %v)", err, res.Faults, res.FaultLog)
	}
	if err := res.LivenessError(); err != nil {
		return res, fmt.Errorf("%w (faults %s: %v)", err, res.Faults, res.FaultLog)
	}
	lin := res.CheckLinearizable(LinTimeout)
	if err := lin.Err(); err != nil {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("blossom-%s-seed-%d.html", cfg.Protocol, cfg.Seed))
		if werr := lin.WriteHTML(path); werr != nil {
			path = "not written: " + werr.Error()
		}
		return res, fmt.Errorf("seed %d: %w (faults %s; report %s)", cfg.Seed, err, res.Faults, path)
	}
	return res, nil
}

// Sweep checks cfg for seeds first, first+1, ..., first+n−1, running them
// on all cores, and reports every failing seed through t.
func Sweep(t *testing.T, cfg simnet.Config, first uint64, n int) {
	t.Helper()
	errs := run(cfg, first, n, false)
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) == 0 {
		t.Logf("%s: %d seeds from %d passed the checks of its contract (order, liveness, linearizability for linearizable protocols)", cfg.Protocol, n, first)
	}
}

// FirstViolation checks seeds first, first+1, ... up to n of them and
// returns the smallest failing seed with its error, or an error wrapping
// ErrNoViolation if every seed passed.
func FirstViolation(cfg simnet.Config, first uint64, n int) (uint64, error) {
	errs := run(cfg, first, n, true)
	if len(errs) == 0 {
		return 0, fmt.Errorf("%w in %d seeds from %d", ErrNoViolation, n, first)
	}
	return errs[0].seed, errs[0]
}

// ErrNoViolation is returned by FirstViolation when every seed passed.
var ErrNoViolation = errors.New("simtest: no violation")

type seedError struct {
	seed uint64
	err  error
}

func (e seedError) Error() string { return e.err.Error() }

// run checks the seeds on GOMAXPROCS workers and returns the failures in
// seed order. With stopEarly, seeds above the smallest failure found so far
// are skipped.
func run(cfg simnet.Config, first uint64, n int, stopEarly bool) []seedError {
	var (
		mu     sync.Mutex
		errs   = make([]*seedError, n)
		failed = n
		next   = 0
		wg     sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := i >= n || (stopEarly && i > failed)
				mu.Unlock()
				if stop {
					return
				}
				c := cfg
				c.Seed = first + uint64(i)
				if _, err := Check(c); err != nil {
					mu.Lock()
					errs[i] = &seedError{seed: c.Seed, err: err}
					failed = min(failed, i)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	var out []seedError
	for _, e := range errs {
		if e != nil {
			out = append(out, *e)
		}
	}
	return out
}
