package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func runExpArgs(args ...string) (string, error) {
	cmd := newExpCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// The dry run of planet on AWS prints the deployment, the agents' calls
// for every point that fits three regions, and the teardown of what it
// pretended to create; it writes no results.
func TestExpRunAWSDryRun(t *testing.T) {
	dir := t.TempDir()
	out, err := runExpArgs("run", "planet", "--quick", "--dir", dir, "--target", "aws", "--dry-run",
		"--regions", "us-east-1,eu-west-1,ap-northeast-1", "--deployment", "t1")
	require.NoError(t, err, out)
	count := func(s string) int { return strings.Count(out, s) }
	for op, n := range map[string]int{
		" ec2:CreateSecurityGroup ": 3, " ec2:AllocateAddress ": 3, " ec2:RunInstances ": 3, " ec2:AssociateAddress ": 3,
		" ec2:TerminateInstances ": 3, " ec2:ReleaseAddress ": 3, " ec2:DeleteSecurityGroup ": 3,
		// planet's quick points with 3 sites: atlas f=1, fpaxos f=1, epaxos,
		// mencius, 3 repetitions each, on 3 agents.
		"/start ": 4 * 3 * 3, "/load ": 4 * 3 * 3, "/stop ": 4 * 3 * 3,
	} {
		require.Equal(t, n, count(op), "%q in:\n%s", op, out)
	}
	require.Contains(t, out, `"protocol":"fpaxos"`)
	require.NotContains(t, out, `"sites":"5"`)
	require.NoDirExists(t, dir+"/aws")
}

func TestExpRunAWSRefusals(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "multicast", "--target", "aws", "--regions", "us-east-1", "--dry-run"}, "no AWS measurement"},
		{[]string{"run", "planet", "--target", "aws", "--dry-run"}, "needs --regions"},
		{[]string{"run", "planet", "--target", "mars"}, "want local or aws"},
		{[]string{"run", "planet", "--target", "aws", "--regions", "us-east-1", "--operator-cidr", "0.0.0.0/0",
			"--binary-url", "https://example.com/b", "--binary-sha256", strings.Repeat("0", 64)}, "admits every address"},
		{[]string{"run", "planet", "--target", "aws", "--regions", "us-east-1"}, "operator address range"},
		{[]string{"teardown", "--regions", "us-east-1"}, "--deployment and --regions"},
	} {
		_, err := runExpArgs(tc.args...)
		require.Error(t, err, "%v", tc.args)
		require.Contains(t, err.Error(), tc.want, "%v", tc.args)
		var ee *exitError
		require.True(t, errors.As(err, &ee) && ee.code == 2, "%v: %v", tc.args, err)
	}
}
