package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/blossom-dso/blossom/pmem/ycsb"
)

func init() { root.AddCommand(newYCSBCmd()) }

// newYCSBCmd is `blossom ycsb`: YCSB workloads A-F against the pmem heap and
// the comparison stores, printed as a table with the pmem/file and
// pmem/bbolt ratios.
func newYCSBCmd() *cobra.Command {
	var (
		cfg       ycsb.Config
		dir       string
		backends  string
		workloads string
		profile   string
	)
	cmd := &cobra.Command{
		Use:   "ycsb",
		Short: "Run YCSB A-F against the pmem heap, the file store, memory and bbolt",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var bs []ycsb.Backend
			for _, name := range strings.Split(backends, ",") {
				found := false
				for _, b := range ycsb.Backends {
					if b.Name == name {
						bs, found = append(bs, b), true
					}
				}
				if !found {
					return fmt.Errorf("ycsb: unknown back end %q", name)
				}
			}
			var ws []ycsb.Workload
			for _, name := range strings.Split(workloads, ",") {
				w, err := ycsb.WorkloadByName(strings.ToUpper(name))
				if err != nil {
					return err
				}
				ws = append(ws, w)
			}
			t, err := ycsb.RunTable(dir, bs, ws, cfg, ycsb.TableOptions{Log: cmd.ErrOrStderr(), CPUProfile: profile})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "YCSB: %d records of %d x %d bytes, %d ops per workload, files in %s, one client\n",
				cfg.Records, 10, 100, cfg.Ops, dir)
			t.Format(cmd.OutOrStdout())
			return nil
		},
	}
	def := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		def = "/dev/shm"
	}
	cmd.Flags().IntVar(&cfg.Records, "records", 100000, "records loaded")
	cmd.Flags().IntVar(&cfg.Ops, "ops", 100000, "operations per workload")
	cmd.Flags().Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	cmd.Flags().StringVar(&dir, "dir", def, "directory for the stores' files")
	cmd.Flags().StringVar(&backends, "backends", "pmem,file,memory,bbolt", "back ends, comma-separated")
	cmd.Flags().StringVar(&workloads, "workloads", "A,B,C,D,E,F", "workloads, in run order")
	cmd.Flags().StringVar(&profile, "cpuprofile", "", "write a CPU profile of each run to `PREFIX`.BACKEND.WORKLOAD.pprof")
	return cmd
}
