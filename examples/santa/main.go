// Command santa runs the Santa Claus problem (deliverable Table 3) in its
// three variants (package claus): plain goroutines with channels and
// sync/atomic, goroutines sharing DSO objects, and cloud threads on the
// executor back end of -executor sharing DSO objects. Every run is
// checked (Santa woke only for 9 reindeer or a group of 3 elves; everyone
// was served).
//
//	go run ./examples/santa -variant all -executor process
//	go run ./examples/santa -bench 5 -work 10ms
//
// With -bench N it runs each variant N times and prints the mean time and
// the overhead of the DSO and cloud variants over plain goroutines.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/blossom-dso/blossom/examples/internal/setup"
	"github.com/blossom-dso/blossom/examples/santa/claus"
	"github.com/blossom-dso/blossom/executor"
)

func main() {
	executor.MaybeServeWorker() // a worker process of the process back end
	var f setup.Flags
	f.Register(flag.CommandLine)
	variant := flag.String("variant", "all", "goroutines, dso, cloud or all")
	deliveries := flag.Int("deliveries", 10, "deliveries (each reindeer comes back this often; each elf asks 3× as often)")
	work := flag.Duration("work", 0, "bound of the random time of vacations, toy making, deliveries and helps")
	bench := flag.Int("bench", 0, "run each variant this many times and report the overheads")
	flag.Parse()
	if err := run(f, *variant, *deliveries, *work, *bench); err != nil {
		fmt.Fprintln(os.Stderr, "santa:", err)
		os.Exit(1)
	}
}

func run(f setup.Flags, variant string, deliveries int, work time.Duration, bench int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	env, err := setup.Start(ctx, f, setup.Options{Concurrency: 20, Log: os.Stdout})
	if err != nil {
		return err
	}
	defer env.Close()
	ctx = env.Context(ctx)
	base := fmt.Sprint("santa-", time.Now().UnixNano())
	variants := map[string]func(claus.Config) (claus.Result, error){
		"goroutines": func(c claus.Config) (claus.Result, error) { return claus.RunGoroutines(ctx, claus.Local(), c) },
		"dso": func(c claus.Config) (claus.Result, error) {
			return claus.RunGoroutines(ctx, claus.DSO(env.Client, c.Run), c)
		},
		"cloud": func(c claus.Config) (claus.Result, error) { return claus.RunCloud(ctx, c) },
	}
	order := []string{"goroutines", "dso", "cloud"}
	if variant != "all" {
		if variants[variant] == nil {
			return fmt.Errorf("unknown -variant %q (goroutines, dso, cloud, all)", variant)
		}
		order = []string{variant}
	}
	reps := max(bench, 1)
	fmt.Printf("9 reindeer, 10 elves in groups of 3, %d deliveries, %d requests per elf, work < %v; cloud threads on the %s back end\n",
		deliveries, 3*deliveries, work, env.Exec.Backend().Name())
	// Warm the back end (worker processes) so that start-up is not timed.
	if _, err := variants["cloud"](claus.Config{Run: base + "-warm", Reindeer: 9, Elves: 10, Group: 3, Deliveries: 1, Requests: 1}); err != nil {
		return err
	}
	mean := map[string]time.Duration{}
	for _, v := range order {
		var total time.Duration
		for i := range reps {
			c := claus.Classic(fmt.Sprint(base, "-", v, "-", i), deliveries, work)
			c.Seed = uint64(i + 1)
			start := time.Now()
			r, err := variants[v](c)
			if err != nil {
				return fmt.Errorf("%s: %w", v, err)
			}
			total += time.Since(start)
			if err := claus.Check(c, r); err != nil {
				return fmt.Errorf("%s: %w", v, err)
			}
		}
		mean[v] = total / time.Duration(reps)
		line := fmt.Sprintf("%-10s  %4d run(s) checked  mean %v", v, reps, mean[v].Round(time.Microsecond))
		if g := mean["goroutines"]; g > 0 && v != "goroutines" {
			line += fmt.Sprintf("  overhead %+.1f%%", 100*(float64(mean[v])/float64(g)-1))
		}
		fmt.Println(line)
	}
	return env.Client.Clear(ctx)
}
