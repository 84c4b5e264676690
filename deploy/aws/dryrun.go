package awsdeploy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	ltypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// DryRun is a Clients that makes no call: it prints each call as
// "REGION SERVICE:Operation INPUT-JSON" to its writer and answers with
// made-up identifiers (i-dry…, eipalloc-dry…, sg-dry…) and addresses from
// the documentation range 198.51.100.0/24, every instance running at once.
// A teardown in a dry run finds nothing tagged and prints only the
// Describe and List calls. User data is printed once per distinct script,
// decoded, after the call that carries it.
type DryRun struct {
	mu   sync.Mutex
	w    io.Writer
	n    int
	seen map[string]bool
	// Calls counts the calls printed.
	Calls int
}

// NewDryRun returns a DryRun printing to w.
func NewDryRun(w io.Writer) *DryRun { return &DryRun{w: w, seen: map[string]bool{}} }

// EC2 returns the dry-run EC2 client of region.
func (d *DryRun) EC2(region string) EC2API { return dryEC2{d, region} }

// Lambda returns the dry-run Lambda client of region.
func (d *DryRun) Lambda(region string) LambdaAPI { return dryLambda{d, region} }

// Printf prints a line of its own among the calls (the agent's HTTP calls of
// a dry-run experiment).
func (d *DryRun) Printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Calls++
	fmt.Fprintf(d.w, format, args...)
}

func (d *DryRun) print(region, op string, in any) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Calls++
	d.n++
	js, err := json.Marshal(in)
	if err != nil {
		js = []byte(fmt.Sprintf("%+v", in))
	}
	fmt.Fprintf(d.w, "%s %s %s\n", region, op, js)
	return d.n
}

func (d *DryRun) userData(region, b64 string) {
	script, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen[string(script)] {
		return
	}
	d.seen[string(script)] = true
	fmt.Fprintf(d.w, "--- user data of %s (%d bytes, base64 in the call above):\n%s---\n", region, len(script), script)
}

type dryEC2 struct {
	d      *DryRun
	region string
}

func (e dryEC2) CreateSecurityGroup(_ context.Context, in *ec2.CreateSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error) {
	n := e.d.print(e.region, "ec2:CreateSecurityGroup", in)
	return &ec2.CreateSecurityGroupOutput{GroupId: aws.String(fmt.Sprintf("sg-dry%04d", n))}, nil
}

func (e dryEC2) AuthorizeSecurityGroupIngress(_ context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	e.d.print(e.region, "ec2:AuthorizeSecurityGroupIngress", in)
	return &ec2.AuthorizeSecurityGroupIngressOutput{Return: aws.Bool(true)}, nil
}

func (e dryEC2) AllocateAddress(_ context.Context, in *ec2.AllocateAddressInput, _ ...func(*ec2.Options)) (*ec2.AllocateAddressOutput, error) {
	n := e.d.print(e.region, "ec2:AllocateAddress", in)
	return &ec2.AllocateAddressOutput{AllocationId: aws.String(fmt.Sprintf("eipalloc-dry%04d", n)), PublicIp: aws.String(fmt.Sprintf("198.51.100.%d", n%250+1))}, nil
}

func (e dryEC2) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	shown := *in
	ud := aws.ToString(in.UserData)
	if ud != "" {
		shown.UserData = aws.String(fmt.Sprintf("<%d bytes of base64>", len(ud)))
	}
	n := e.d.print(e.region, "ec2:RunInstances", &shown)
	e.d.userData(e.region, ud)
	out := &ec2.RunInstancesOutput{}
	for i := range aws.ToInt32(in.MinCount) {
		out.Instances = append(out.Instances, ec2types.Instance{InstanceId: aws.String(fmt.Sprintf("i-dry%04d%02d", n, i))})
	}
	return out, nil
}

func (e dryEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	e.d.print(e.region, "ec2:DescribeInstances", in)
	var res ec2types.Reservation
	for _, id := range in.InstanceIds {
		res.Instances = append(res.Instances, ec2types.Instance{InstanceId: aws.String(id), State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning}})
	}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{res}}, nil
}

func (e dryEC2) AssociateAddress(_ context.Context, in *ec2.AssociateAddressInput, _ ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error) {
	n := e.d.print(e.region, "ec2:AssociateAddress", in)
	return &ec2.AssociateAddressOutput{AssociationId: aws.String(fmt.Sprintf("eipassoc-dry%04d", n))}, nil
}

func (e dryEC2) TerminateInstances(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	e.d.print(e.region, "ec2:TerminateInstances", in)
	return &ec2.TerminateInstancesOutput{}, nil
}

func (e dryEC2) DescribeAddresses(_ context.Context, in *ec2.DescribeAddressesInput, _ ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error) {
	e.d.print(e.region, "ec2:DescribeAddresses", in)
	return &ec2.DescribeAddressesOutput{}, nil
}

func (e dryEC2) ReleaseAddress(_ context.Context, in *ec2.ReleaseAddressInput, _ ...func(*ec2.Options)) (*ec2.ReleaseAddressOutput, error) {
	e.d.print(e.region, "ec2:ReleaseAddress", in)
	return &ec2.ReleaseAddressOutput{}, nil
}

func (e dryEC2) DescribeSecurityGroups(_ context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	e.d.print(e.region, "ec2:DescribeSecurityGroups", in)
	return &ec2.DescribeSecurityGroupsOutput{}, nil
}

func (e dryEC2) DeleteSecurityGroup(_ context.Context, in *ec2.DeleteSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error) {
	e.d.print(e.region, "ec2:DeleteSecurityGroup", in)
	return &ec2.DeleteSecurityGroupOutput{}, nil
}

type dryLambda struct {
	d      *DryRun
	region string
}

func (l dryLambda) CreateFunction(_ context.Context, in *lambda.CreateFunctionInput, _ ...func(*lambda.Options)) (*lambda.CreateFunctionOutput, error) {
	shown := *in
	if in.Code != nil {
		shown.Code = &ltypes.FunctionCode{ZipFile: []byte(fmt.Sprintf("<%d bytes of zip>", len(in.Code.ZipFile)))}
	}
	l.d.print(l.region, "lambda:CreateFunction", &shown)
	return &lambda.CreateFunctionOutput{
		FunctionName: in.FunctionName,
		FunctionArn:  aws.String("arn:aws:lambda:" + l.region + ":000000000000:function:" + aws.ToString(in.FunctionName)),
	}, nil
}

func (l dryLambda) ListFunctions(_ context.Context, in *lambda.ListFunctionsInput, _ ...func(*lambda.Options)) (*lambda.ListFunctionsOutput, error) {
	l.d.print(l.region, "lambda:ListFunctions", in)
	return &lambda.ListFunctionsOutput{}, nil
}

func (l dryLambda) ListTags(_ context.Context, in *lambda.ListTagsInput, _ ...func(*lambda.Options)) (*lambda.ListTagsOutput, error) {
	l.d.print(l.region, "lambda:ListTags", in)
	return &lambda.ListTagsOutput{}, nil
}

func (l dryLambda) DeleteFunction(_ context.Context, in *lambda.DeleteFunctionInput, _ ...func(*lambda.Options)) (*lambda.DeleteFunctionOutput, error) {
	l.d.print(l.region, "lambda:DeleteFunction", in)
	return &lambda.DeleteFunctionOutput{}, nil
}
