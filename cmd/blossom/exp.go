package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/blossom-dso/blossom/experiments"
	"github.com/blossom-dso/blossom/plots"
)

func init() {
	root.AddCommand(newExpCmd())
	// The DSO against Redis experiments run this binary's bench-dso.
	if exe, err := os.Executable(); err == nil {
		experiments.BlossomBinary = exe
	}
}

// expFlags are the flags shared by the exp subcommands.
type expFlags struct {
	dir   string
	quick bool
	every time.Duration
}

func (fl *expFlags) size() experiments.Size {
	if fl.quick {
		return experiments.Quick
	}
	return experiments.Full
}

func newExpCmd() *cobra.Command {
	var fl expFlags
	cmd := &cobra.Command{
		Use:   "exp",
		Short: "Run the experiments that regenerate the papers' figures, and plot them",
		Long: `exp runs the registered experiments (package experiments) and renders their
figures (package plots). Each experiment writes results/NAME/data.csv (tidy:
one row per measurement, with its parameters) and results/NAME/env.json
(commit, Go version, CPU, date, flags); a run resumes where the CSV stops, so
delete the CSV to measure again. plot renders results/NAME/NAME.png and .svg
and results/NAME/table.md, and rewrites results/index.html.`,
		Example: `  blossom exp list
  blossom exp run planet --quick
  blossom exp plot planet
  blossom exp all --quick`,
	}
	cmd.PersistentFlags().StringVar(&fl.dir, "dir", "results", "results folder")
	cmd.PersistentFlags().BoolVar(&fl.quick, "quick", false, "quick sizes (small grids, few repetitions)")
	cmd.PersistentFlags().DurationVar(&fl.every, "progress-every", 2*time.Second, "least time between two progress lines")

	lookup := func(names []string) ([]*experiments.Experiment, error) {
		var out []*experiments.Experiment
		for _, n := range names {
			e, err := experiments.Lookup(n)
			if err != nil {
				return nil, &exitError{code: 2, err: err}
			}
			out = append(out, e)
		}
		return out, nil
	}
	run := func(cmd *cobra.Command, exps []*experiments.Experiment) error {
		for _, e := range exps {
			if _, err := experiments.Run(e, experiments.Options{Dir: fl.dir, Size: fl.size(), Progress: cmd.ErrOrStderr(), Every: fl.every}); err != nil {
				return &exitError{code: 1, err: err}
			}
		}
		return nil
	}
	plot := func(cmd *cobra.Command, exps []*experiments.Experiment) error {
		for _, e := range exps {
			png, t, err := plots.Plot(e, fl.dir)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n\n%s\n", png, t.Markdown())
		}
		if err := plots.Index(experiments.All(), fl.dir); err != nil {
			return &exitError{code: 1, err: err}
		}
		fmt.Fprintln(cmd.OutOrStdout(), filepath.Join(fl.dir, "index.html"))
		return nil
	}

	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the registered experiments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintf(w, "NAME\tQUICK\tFULL\tTITLE\n")
			for _, e := range experiments.All() {
				fmt.Fprintf(w, "%s\t%d×%d\t%d×%d\t%s\n", e.Name,
					len(e.Points(experiments.Quick)), e.Reps(experiments.Quick),
					len(e.Points(experiments.Full)), e.Reps(experiments.Full), e.Title)
			}
			return w.Flush()
		},
	})
	var af awsFlags
	runCmd := &cobra.Command{
		Use:   "run NAME...",
		Short: "Run experiments (resuming where their CSV stops), here or on AWS",
		Long: `run measures experiments on this machine, or with --target aws on machines it
deploys in --regions (package deploy/aws; credentials from the AWS SDK's
standard chain), collecting their CSV under DIR/aws/NAME and tearing the
deployment down at the end. --dry-run prints every call instead.`,
		Example: `  blossom exp run planet --quick
  blossom exp run planet --target aws --regions us-east-1,eu-west-1,ap-northeast-1 --dry-run`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			exps, err := lookup(args)
			if err != nil {
				return err
			}
			switch af.target {
			case "local":
				return run(cmd, exps)
			case "aws":
				return runAWS(cmd, exps, &fl, &af)
			}
			return &exitError{code: 2, err: fmt.Errorf("exp run: --target %q: want local or aws", af.target)}
		},
	}
	addAWSFlags(runCmd, &af)
	cmd.AddCommand(runCmd, newExpTeardownCmd(), newExpAgentCmd())
	cmd.AddCommand(&cobra.Command{
		Use:   "plot NAME...",
		Short: "Render experiments' figures and tables from their CSV, and results/index.html",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			exps, err := lookup(args)
			if err != nil {
				return err
			}
			return plot(cmd, exps)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "all",
		Short: "Run and plot every experiment, and write results/index.html",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(fl.dir, 0o755); err != nil {
				return err
			}
			if err := run(cmd, experiments.All()); err != nil {
				return err
			}
			return plot(cmd, experiments.All())
		},
	})
	return cmd
}
