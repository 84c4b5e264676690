package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	awsdeploy "github.com/blossom-dso/blossom/deploy/aws"
	"github.com/blossom-dso/blossom/experiments"
	"github.com/blossom-dso/blossom/experiments/remote"
)

// awsFlags are the flags of `blossom exp run --target aws` and `exp
// teardown`.
type awsFlags struct {
	target       string
	regions      []string
	deployment   string
	operatorCIDR string
	binaryURL    string
	binarySHA256 string
	instanceType string
	perRegion    int
	lambdaZip    string
	lambdaRole   string
	endpoint     string
	dryRun       bool
	keep         bool
}

func addAWSFlags(cmd *cobra.Command, af *awsFlags) {
	f := cmd.Flags()
	f.StringVar(&af.target, "target", "local", "where to measure: local (this machine, the simulator) or aws (deploy, measure on the machines, tear down)")
	f.StringSliceVar(&af.regions, "regions", nil, "AWS regions of the deployment, one node each (--target aws)")
	f.StringVar(&af.deployment, "deployment", "", "deployment id, the value of every resource's "+awsdeploy.TagKey+" tag (default exp-DATE-TIME)")
	f.StringVar(&af.operatorCIDR, "operator-cidr", "", "your address range, e.g. 198.51.100.7/32: the only outside source the security groups admit (required unless --dry-run)")
	f.StringVar(&af.binaryURL, "binary-url", "", "HTTPS URL of the linux/amd64 blossom binary the instances download (required unless --dry-run)")
	f.StringVar(&af.binarySHA256, "binary-sha256", "", "its SHA-256, checked on the instances (required unless --dry-run)")
	f.StringVar(&af.instanceType, "instance-type", "t3.small", "EC2 instance type")
	f.IntVar(&af.perRegion, "per-region", 1, "instances per region")
	f.StringVar(&af.lambdaZip, "lambda-zip", "", "deployment package of the executor's Lambda function (one per region; none if empty)")
	f.StringVar(&af.lambdaRole, "lambda-role", "", "IAM role ARN the Lambda functions run as")
	f.StringVar(&af.endpoint, "aws-endpoint", "", "replace every AWS endpoint (a local stub or emulator)")
	f.BoolVar(&af.dryRun, "dry-run", false, "print every AWS API and agent call instead of making it")
	f.BoolVar(&af.keep, "keep", false, "leave the deployment running after the run (tear it down with blossom exp teardown)")
}

// awsClients returns the dry-run printer or the SDK's clients (credentials
// from the SDK's standard chain).
func awsClients(ctx context.Context, af *awsFlags, out io.Writer) (awsdeploy.Clients, *awsdeploy.DryRun, error) {
	if af.dryRun {
		d := awsdeploy.NewDryRun(out)
		return d, d, nil
	}
	cl, err := awsdeploy.NewClients(ctx, af.endpoint)
	return cl, nil, err
}

// runAWS deploys af's machines, measures exps on them through their agents
// into DIR/aws/NAME, and tears the deployment down (unless --keep).
func runAWS(cmd *cobra.Command, exps []*experiments.Experiment, fl *expFlags, af *awsFlags) (err error) {
	out := cmd.OutOrStdout()
	for _, e := range exps {
		if !slices.Contains(remote.Supported(), e.Name) {
			return &exitError{code: 2, err: fmt.Errorf("exp: %s has no AWS measurement (supported: %s)", e.Name, strings.Join(remote.Supported(), ", "))}
		}
	}
	if len(af.regions) == 0 {
		return &exitError{code: 2, err: errors.New("exp: --target aws needs --regions")}
	}
	id := af.deployment
	if id == "" {
		id = "exp-" + time.Now().UTC().Format("20060102-150405")
	}
	cfg := awsdeploy.Config{
		ID: id, Regions: af.regions, PerRegion: af.perRegion, InstanceType: af.instanceType,
		OperatorCIDR: af.operatorCIDR, BinaryURL: af.binaryURL, BinarySHA256: af.binarySHA256, LambdaRole: af.lambdaRole,
	}
	if af.dryRun {
		// Placeholders from the documentation ranges, so that a dry run
		// needs nothing but the regions.
		if cfg.OperatorCIDR == "" {
			cfg.OperatorCIDR = "192.0.2.1/32"
		}
		if cfg.BinaryURL == "" {
			cfg.BinaryURL = "https://example.com/blossom"
		}
		if cfg.BinarySHA256 == "" {
			cfg.BinarySHA256 = strings.Repeat("0", 64)
		}
		fmt.Fprintf(out, "# dry run of deployment %s: no call is made; placeholders: operator %s, binary %s\n", id, cfg.OperatorCIDR, cfg.BinaryURL)
	}
	if af.lambdaZip != "" {
		if cfg.LambdaZip, err = os.ReadFile(af.lambdaZip); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	if err := cfg.Validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	clients, dry, err := awsClients(ctx, af, out)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	d, err := awsdeploy.Deploy(ctx, clients, cfg)
	defer func() {
		if af.keep {
			fmt.Fprintf(out, "# deployment %s kept: blossom exp teardown --deployment %s --regions %s\n", id, id, strings.Join(af.regions, ","))
			return
		}
		if terr := awsdeploy.Teardown(context.WithoutCancel(ctx), clients, id, af.regions, 0, 0); terr != nil {
			err = errors.Join(err, &exitError{code: 1, err: fmt.Errorf("exp: teardown of %s: %w (run blossom exp teardown)", id, terr)})
		}
	}()
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	drv := &remote.Driver{}
	for _, n := range d.Nodes {
		drv.Nodes = append(drv.Nodes, remote.Node{
			ID: n.ID, Site: n.Region,
			Agent: fmt.Sprintf("%s:%d", n.PublicIP, d.AgentPort), Peer: fmt.Sprintf("%s:%d", n.PublicIP, d.PeerPort),
		})
	}
	if dry != nil {
		drv.DryRun = dry.Printf
		for _, n := range drv.Nodes {
			dry.Printf("%s agent GET http://%s/status (until it answers)\n", n.Site, n.Agent)
		}
		for _, e := range exps {
			for _, p := range e.Points(fl.size()) {
				if !drv.Fits(p) {
					continue
				}
				for rep := range e.Reps(fl.size()) {
					if _, err := drv.Measure(e, p, rep, fl.size()); err != nil {
						return &exitError{code: 1, err: err}
					}
				}
			}
		}
		dry.Printf("# results would go to %s\n", filepath.Join(fl.dir, "aws"))
		return nil
	}
	dir := filepath.Join(fl.dir, "aws")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &exitError{code: 1, err: err}
	}
	js, _ := json.MarshalIndent(d, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "deployment.json"), append(js, '\n'), 0o644); err != nil {
		return &exitError{code: 1, err: err}
	}
	if err := waitAgents(ctx, drv, 15*time.Minute); err != nil {
		return &exitError{code: 1, err: err}
	}
	for _, e := range exps {
		_, err := experiments.Run(e, experiments.Options{
			Dir: dir, Size: fl.size(), Progress: cmd.ErrOrStderr(), Every: fl.every, Measure: drv.Measure, Fits: drv.Fits,
		})
		if err != nil {
			return &exitError{code: 1, err: err}
		}
	}
	fmt.Fprintf(out, "results in %s (blossom exp plot --dir %s NAME)\n", dir, dir)
	return nil
}

// waitAgents polls every agent's /status until it answers: the instances
// download the binary and start the unit after boot.
func waitAgents(ctx context.Context, drv *remote.Driver, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, n := range drv.Nodes {
		url := "http://" + n.Agent + "/status"
		for {
			resp, err := hc.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("exp: the agent of node %d (%s) did not answer within %s", n.ID, url, timeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Second):
			}
		}
	}
	return nil
}

func newExpTeardownCmd() *cobra.Command {
	var af awsFlags
	cmd := &cobra.Command{
		Use:   "teardown",
		Short: "Delete every AWS resource tagged with a deployment's id",
		Long: `teardown terminates the instances, releases the Elastic IPs, and deletes the
security groups and Lambda functions tagged ` + awsdeploy.TagKey + `=ID in the regions.
It deletes nothing else, and running it twice is harmless.`,
		Example: `  blossom exp teardown --deployment exp-20261201-2000 --regions us-east-1,eu-west-1 --dry-run`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if af.deployment == "" || len(af.regions) == 0 {
				return &exitError{code: 2, err: errors.New("exp teardown: --deployment and --regions are required")}
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			clients, _, err := awsClients(ctx, &af, cmd.OutOrStdout())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if err := awsdeploy.Teardown(ctx, clients, af.deployment, af.regions, 0, 0); err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&af.deployment, "deployment", "", "deployment id")
	f.StringSliceVar(&af.regions, "regions", nil, "regions to clean")
	f.StringVar(&af.endpoint, "aws-endpoint", "", "replace every AWS endpoint (a local stub or emulator)")
	f.BoolVar(&af.dryRun, "dry-run", false, "print the calls instead of making them")
	return cmd
}

func newExpAgentCmd() *cobra.Command {
	var listen, site, dataDir, binary string
	var clientPort int
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Serve the experiment agent of a deployed machine (its systemd unit runs this)",
		Long: `agent serves the HTTP API the operator's blossom exp run --target aws drives:
POST /start starts a blossom replica (protocol, f, peers), POST /load runs
closed-loop clients against it and answers their latencies, POST /stop stops
it, GET /status. Only the operator's address may reach it (security group).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if binary == "" {
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				binary = exe
			}
			log, err := dsoLogger("info")
			if err != nil {
				return err
			}
			ag := &remote.Agent{Site: site, Binary: binary, DataDir: dataDir, ClientPort: clientPort, Logger: log}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			srv := &http.Server{Handler: ag, ReadHeaderTimeout: 10 * time.Second}
			ctx, cancel := dsoSignalContext(cmd)
			defer cancel()
			go func() {
				<-ctx.Done()
				srv.Close()
			}()
			log.Info("agent listening", "addr", ln.Addr().String(), "site", site)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return ag.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", fmt.Sprintf("127.0.0.1:%d", awsdeploy.DefaultAgentPort), "listen address")
	f.StringVar(&site, "site", "local", "this machine's site (region), named in its results")
	f.StringVar(&dataDir, "data-dir", "agent-data", "the replica's data directory (emptied on every start)")
	f.StringVar(&binary, "blossom", "", "the blossom binary to run replicas with (default: this one)")
	f.IntVar(&clientPort, "client-port", awsdeploy.DefaultClientPort, "the replica's client API port on 127.0.0.1")
	return cmd
}
