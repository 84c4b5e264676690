package awsdeploy

import (
	"bytes"
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

const (
	testSHA      = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testOperator = "198.51.100.7/32"
)

func testConfig() Config {
	return Config{
		ID:           "t1",
		Regions:      []string{"us-east-1", "eu-west-1", "ap-southeast-2"},
		OperatorCIDR: testOperator,
		BinaryURL:    "https://example.com/blossom",
		BinarySHA256: testSHA,
		LambdaZip:    []byte("PK fake zip"),
		LambdaRole:   "arn:aws:iam::000000000000:role/blossom-executor",
		Poll:         time.Millisecond,
		Timeout:      5 * time.Second,
	}
}

// stubClients returns SDK clients of the stub at its URL: the SDK's
// BaseEndpoint, static made-up credentials (the stub only reads the region
// of their signature), no retries.
func stubClients(t *testing.T, s *stub) Clients {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("STUBKEY", "stub-secret", "")),
		config.WithRetryMaxAttempts(1),
		config.WithSharedConfigFiles([]string{}), config.WithSharedCredentialsFiles([]string{}))
	if err != nil {
		t.Fatal(err)
	}
	return FromConfig(cfg, srv.URL)
}

// The deployment against the stub: the calls in order, every resource
// tagged, the security groups admitting only the cluster's and the
// operator's addresses, each instance with its own address and the user
// data; then teardown deletes everything tagged and nothing else.
func TestDeployTeardownStub(t *testing.T) {
	s := newStub()
	cl := stubClients(t, s)
	ctx := context.Background()
	c := testConfig()

	// A resource of someone else, untagged, in the same region: teardown
	// must leave it.
	if _, err := cl.EC2("us-east-1").AllocateAddress(ctx, &ec2.AllocateAddressInput{}); err != nil {
		t.Fatal(err)
	}
	foreign := len(s.regions["us-east-1"].addrs)
	start := len(s.calls)

	d, err := Deploy(ctx, cl, c)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"us-east-1 ec2:CreateSecurityGroup", "eu-west-1 ec2:CreateSecurityGroup", "ap-southeast-2 ec2:CreateSecurityGroup",
		"us-east-1 ec2:AllocateAddress", "eu-west-1 ec2:AllocateAddress", "ap-southeast-2 ec2:AllocateAddress",
		"us-east-1 ec2:AuthorizeSecurityGroupIngress", "eu-west-1 ec2:AuthorizeSecurityGroupIngress", "ap-southeast-2 ec2:AuthorizeSecurityGroupIngress",
		"us-east-1 ec2:RunInstances", "eu-west-1 ec2:RunInstances", "ap-southeast-2 ec2:RunInstances",
		"us-east-1 ec2:DescribeInstances", "eu-west-1 ec2:DescribeInstances", "ap-southeast-2 ec2:DescribeInstances",
		"us-east-1 ec2:AssociateAddress", "eu-west-1 ec2:AssociateAddress", "ap-southeast-2 ec2:AssociateAddress",
		"us-east-1 lambda:CreateFunction", "eu-west-1 lambda:CreateFunction", "ap-southeast-2 lambda:CreateFunction",
	}
	deployOps := s.ops(start)
	if !slices.Equal(deployOps, want) {
		t.Fatalf("deploy calls:\n%s\nwant:\n%s", strings.Join(deployOps, "\n"), strings.Join(want, "\n"))
	}
	if len(d.Nodes) != 3 {
		t.Fatalf("%d nodes, want 3", len(d.Nodes))
	}
	var cluster []string
	for i, n := range d.Nodes {
		if n.ID != uint32(i+1) || n.Region != c.Regions[i] || n.InstanceID == "" || n.PublicIP == "" {
			t.Fatalf("node %d: %+v", i, n)
		}
		cluster = append(cluster, n.PublicIP+"/32")
	}
	slices.Sort(cluster)
	for _, r := range c.Regions {
		groups, addrs, insts, funcs := s.live(r)
		if r == "us-east-1" {
			addrs = addrs[foreign:]
		}
		if len(groups) != 1 || len(addrs) != 1 || len(insts) != 1 || len(funcs) != 1 {
			t.Fatalf("%s: %d groups, %d addresses, %d instances, %d functions; want 1 each", r, len(groups), len(addrs), len(insts), len(funcs))
		}
		for kind, res := range map[string]*resource{"group": groups[0], "address": addrs[0], "instance": insts[0], "function": funcs[0]} {
			if res.tags[TagKey] != c.ID {
				t.Errorf("%s: %s %s not tagged %s=%s: %v", r, kind, res.id, TagKey, c.ID, res.tags)
			}
		}
		g, in, a := groups[0], insts[0], addrs[0]
		if in.group != g.id || a.inst != in.id || in.state != "running" {
			t.Errorf("%s: instance %+v, address %+v, group %s", r, in, a, g.id)
		}
		if !strings.Contains(in.user, testSHA) || !strings.Contains(in.user, c.BinaryURL) || !strings.Contains(in.user, "--site "+r) || !strings.Contains(in.user, UnitName) {
			t.Errorf("%s: user data lacks the checksum, URL, site or unit:\n%s", r, in.user)
		}
		if funcs[0].zipLen != len(c.LambdaZip) {
			t.Errorf("%s: function code %d bytes, want %d", r, funcs[0].zipLen, len(c.LambdaZip))
		}
		for _, ports := range sortedKeys(g.perms) {
			got := slices.Sorted(slices.Values(g.perms[ports]))
			switch ports {
			case "7500-7500", "7601-7601":
				if !slices.Equal(got, cluster) {
					t.Errorf("%s: port %s open to %v, want the cluster %v", r, ports, got, cluster)
				}
			case "22-22", "7700-7700":
				if !slices.Equal(got, []string{testOperator}) {
					t.Errorf("%s: port %s open to %v, want the operator only", r, ports, got)
				}
			default:
				t.Errorf("%s: unexpected rule for ports %s: %v", r, ports, got)
			}
		}
		if len(g.perms) != 4 {
			t.Errorf("%s: %d port rules, want 4", r, len(g.perms))
		}
	}

	start = len(s.calls)
	if err := Teardown(ctx, cl, c.ID, c.Regions, time.Millisecond, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Regions {
		groups, addrs, insts, funcs := s.live(r)
		wantAddrs := 0
		if r == "us-east-1" {
			wantAddrs = foreign
		}
		if len(groups) != 0 || len(addrs) != wantAddrs || len(insts) != 0 || len(funcs) != 0 {
			t.Errorf("%s after teardown: %d groups, %d addresses (want %d, not ours), %d instances, %d functions", r, len(groups), len(addrs), wantAddrs, len(insts), len(funcs))
		}
	}
	deletes := func(ops []string) int {
		n := 0
		for _, o := range ops {
			if strings.Contains(o, "Terminate") || strings.Contains(o, "Release") || strings.Contains(o, "Delete") {
				n++
			}
		}
		return n
	}
	teardownOps := s.ops(start)
	if n := deletes(s.ops(start)); n != 12 {
		t.Errorf("teardown made %d deleting calls, want 12:\n%s", n, strings.Join(s.ops(start), "\n"))
	}
	start = len(s.calls)
	if err := Teardown(ctx, cl, c.ID, c.Regions, time.Millisecond, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := deletes(s.ops(start)); n != 0 {
		t.Errorf("a second teardown made %d deleting calls:\n%s", n, strings.Join(s.ops(start), "\n"))
	}

	// The dry run prints the same calls the stub received, in the same
	// order, and makes none.
	var out bytes.Buffer
	dry := NewDryRun(&out)
	if _, err := Deploy(ctx, dry, c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "--- user data of us-east-1") {
		t.Errorf("dry run did not print the user data:\n%s", out.String())
	}
	printed := func() []string {
		var ops []string
		for line := range strings.SplitSeq(out.String(), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && strings.HasPrefix(f[2], "{") {
				op := f[0] + " " + f[1]
				if len(ops) > 0 && ops[len(ops)-1] == op && f[1] == "ec2:DescribeInstances" {
					continue
				}
				ops = append(ops, op)
			}
		}
		out.Reset()
		return ops
	}
	if p := printed(); !slices.Equal(p, deployOps) {
		t.Errorf("dry run printed:\n%s\nwant the stub's calls:\n%s", strings.Join(p, "\n"), strings.Join(deployOps, "\n"))
	}
	if err := Teardown(ctx, dry, c.ID, c.Regions, time.Millisecond, time.Second); err != nil {
		t.Fatal(err)
	}
	if p := printed(); !slices.Equal(p, teardownOps) {
		t.Errorf("dry-run teardown printed:\n%s\nwant the stub's calls:\n%s", strings.Join(p, "\n"), strings.Join(teardownOps, "\n"))
	}

}

// A failed call stops the deployment with the region and operation named,
// and returns what was created so far, which teardown removes.
func TestDeployErrorThenTeardown(t *testing.T) {
	s := newStub()
	cl := stubClients(t, s)
	ctx := context.Background()
	c := testConfig()
	// The second region already has a group of that name: CreateSecurityGroup fails there.
	if _, err := cl.EC2("eu-west-1").CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(groupName(c.ID)), Description: aws.String("not ours")}); err != nil {
		t.Fatal(err)
	}
	_, err := Deploy(ctx, cl, c)
	if err == nil || !strings.Contains(err.Error(), "eu-west-1: CreateSecurityGroup") || !strings.Contains(err.Error(), "InvalidGroup.Duplicate") {
		t.Fatalf("err = %v, want the duplicate group in eu-west-1", err)
	}
	if g, _, _, _ := s.live("us-east-1"); len(g) != 1 {
		t.Fatalf("us-east-1: %d groups before teardown, want 1", len(g))
	}
	if err := Teardown(ctx, cl, c.ID, c.Regions, time.Millisecond, time.Second); err != nil {
		t.Fatal(err)
	}
	if g, _, _, _ := s.live("us-east-1"); len(g) != 0 {
		t.Fatalf("us-east-1: %d groups after teardown", len(g))
	}
	if g, _, _, _ := s.live("eu-west-1"); len(g) != 1 {
		t.Fatalf("eu-west-1: the untagged group of the same name was deleted")
	}
}

func TestValidate(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"no id":          func(c *Config) { c.ID = "" },
		"bad id":         func(c *Config) { c.ID = "a b" },
		"no regions":     func(c *Config) { c.Regions = nil },
		"repeated":       func(c *Config) { c.Regions = []string{"us-east-1", "us-east-1"} },
		"open to all":    func(c *Config) { c.OperatorCIDR = "0.0.0.0/0" },
		"bad cidr":       func(c *Config) { c.OperatorCIDR = "me" },
		"http":           func(c *Config) { c.BinaryURL = "http://example.com/blossom" },
		"short checksum": func(c *Config) { c.BinarySHA256 = "abc" },
		"zip, no role":   func(c *Config) { c.LambdaRole = "" },
		"negative":       func(c *Config) { c.PerRegion = -1 },
	} {
		c := testConfig()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, c)
		}
		if _, err := Deploy(context.Background(), NewDryRun(&bytes.Buffer{}), c); err == nil {
			t.Errorf("%s: Deploy accepted it", name)
		}
	}
	c := testConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
