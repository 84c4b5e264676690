package awsdeploy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
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
// It remembers what it pretended to create, with the deployment's tag, so
// that a teardown after a dry-run deployment prints the calls that would
// delete it; a teardown on its own finds nothing. User data is printed once per distinct script,
// decoded, after the call that carries it.
type DryRun struct {
	mu   sync.Mutex
	w    io.Writer
	n    int
	seen map[string]bool
	// made are the pretended resources by region: the deployment id of
	// each instance, address, group and function id (instances "" once
	// terminated).
	made map[string]map[string]string
	// Calls counts the calls printed.
	Calls int
}

// NewDryRun returns a DryRun printing to w.
func NewDryRun(w io.Writer) *DryRun {
	return &DryRun{w: w, seen: map[string]bool{}, made: map[string]map[string]string{}}
}

// remember notes resource id of region as tagged with the deployment of
// specs (none: untagged, not remembered).
func (d *DryRun) remember(region, id string, specs []ec2types.TagSpecification) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range specs {
		for _, t := range s.Tags {
			if aws.ToString(t.Key) == TagKey {
				if d.made[region] == nil {
					d.made[region] = map[string]string{}
				}
				d.made[region][id] = aws.ToString(t.Value)
				return
			}
		}
	}
}

// tagged returns the remembered ids of region with prefix whose tag
// matches filters' tag filter, sorted.
func (d *DryRun) tagged(region, prefix string, filters []ec2types.Filter) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	want := ""
	for _, f := range filters {
		if aws.ToString(f.Name) == "tag:"+TagKey && len(f.Values) > 0 {
			want = f.Values[0]
		}
	}
	var ids []string
	for id, dep := range d.made[region] {
		if strings.HasPrefix(id, prefix) && dep == want && want != "" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func (d *DryRun) forget(region, id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.made[region], id)
}

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
	} else {
		var v any
		if json.Unmarshal(js, &v) == nil {
			js, _ = json.Marshal(prune(v))
		}
	}
	fmt.Fprintf(d.w, "%s %s %s\n", region, op, js)
	return d.n
}

// prune drops the null, empty-string and empty members of a decoded JSON value: the
// SDK's inputs are mostly unset optional fields.
func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			e = prune(e)
			if e == nil || e == "" {
				delete(x, k)
				continue
			}
			if m, ok := e.(map[string]any); ok && len(m) == 0 {
				delete(x, k)
				continue
			}
			if l, ok := e.([]any); ok && len(l) == 0 {
				delete(x, k)
				continue
			}
			x[k] = e
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = prune(e)
		}
		return x
	}
	return v
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
	id := fmt.Sprintf("sg-dry%04d", n)
	e.d.remember(e.region, id, in.TagSpecifications)
	return &ec2.CreateSecurityGroupOutput{GroupId: aws.String(id)}, nil
}

func (e dryEC2) AuthorizeSecurityGroupIngress(_ context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	e.d.print(e.region, "ec2:AuthorizeSecurityGroupIngress", in)
	return &ec2.AuthorizeSecurityGroupIngressOutput{Return: aws.Bool(true)}, nil
}

func (e dryEC2) AllocateAddress(_ context.Context, in *ec2.AllocateAddressInput, _ ...func(*ec2.Options)) (*ec2.AllocateAddressOutput, error) {
	n := e.d.print(e.region, "ec2:AllocateAddress", in)
	id := fmt.Sprintf("eipalloc-dry%04d", n)
	e.d.remember(e.region, id, in.TagSpecifications)
	return &ec2.AllocateAddressOutput{AllocationId: aws.String(id), PublicIp: aws.String(fmt.Sprintf("198.51.100.%d", n%250+1))}, nil
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
		id := fmt.Sprintf("i-dry%04d%02d", n, i)
		e.d.remember(e.region, id, in.TagSpecifications)
		out.Instances = append(out.Instances, ec2types.Instance{InstanceId: aws.String(id)})
	}
	return out, nil
}

func (e dryEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	e.d.print(e.region, "ec2:DescribeInstances", in)
	var res ec2types.Reservation
	for _, id := range in.InstanceIds {
		st := ec2types.InstanceStateNameRunning
		if e.d.terminated(e.region, id) {
			st = ec2types.InstanceStateNameTerminated
		}
		res.Instances = append(res.Instances, ec2types.Instance{InstanceId: aws.String(id), State: &ec2types.InstanceState{Name: st}})
	}
	for _, id := range e.d.tagged(e.region, "i-", in.Filters) {
		if !e.d.terminated(e.region, id) {
			res.Instances = append(res.Instances, ec2types.Instance{InstanceId: aws.String(id), State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning}})
		}
	}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{res}}, nil
}

func (e dryEC2) AssociateAddress(_ context.Context, in *ec2.AssociateAddressInput, _ ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error) {
	n := e.d.print(e.region, "ec2:AssociateAddress", in)
	return &ec2.AssociateAddressOutput{AssociationId: aws.String(fmt.Sprintf("eipassoc-dry%04d", n))}, nil
}

func (e dryEC2) TerminateInstances(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	e.d.print(e.region, "ec2:TerminateInstances", in)
	for _, id := range in.InstanceIds {
		e.d.terminate(e.region, id)
	}
	return &ec2.TerminateInstancesOutput{}, nil
}

func (e dryEC2) DescribeAddresses(_ context.Context, in *ec2.DescribeAddressesInput, _ ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error) {
	e.d.print(e.region, "ec2:DescribeAddresses", in)
	out := &ec2.DescribeAddressesOutput{}
	for _, id := range e.d.tagged(e.region, "eipalloc-", in.Filters) {
		out.Addresses = append(out.Addresses, ec2types.Address{AllocationId: aws.String(id)})
	}
	return out, nil
}

func (e dryEC2) ReleaseAddress(_ context.Context, in *ec2.ReleaseAddressInput, _ ...func(*ec2.Options)) (*ec2.ReleaseAddressOutput, error) {
	e.d.print(e.region, "ec2:ReleaseAddress", in)
	e.d.forget(e.region, aws.ToString(in.AllocationId))
	return &ec2.ReleaseAddressOutput{}, nil
}

func (e dryEC2) DescribeSecurityGroups(_ context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	e.d.print(e.region, "ec2:DescribeSecurityGroups", in)
	out := &ec2.DescribeSecurityGroupsOutput{}
	for _, id := range e.d.tagged(e.region, "sg-", in.Filters) {
		out.SecurityGroups = append(out.SecurityGroups, ec2types.SecurityGroup{GroupId: aws.String(id)})
	}
	return out, nil
}

func (e dryEC2) DeleteSecurityGroup(_ context.Context, in *ec2.DeleteSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error) {
	e.d.print(e.region, "ec2:DeleteSecurityGroup", in)
	e.d.forget(e.region, aws.ToString(in.GroupId))
	return &ec2.DeleteSecurityGroupOutput{}, nil
}

type dryLambda struct {
	d      *DryRun
	region string
}

func (l dryLambda) CreateFunction(_ context.Context, in *lambda.CreateFunctionInput, _ ...func(*lambda.Options)) (*lambda.CreateFunctionOutput, error) {
	shown := *in
	shown.Code = nil
	l.d.print(l.region, "lambda:CreateFunction", &shown)
	if in.Code != nil {
		l.d.Printf("  (Code.ZipFile: %d bytes, not shown)\n", len(in.Code.ZipFile))
	}
	if dep := in.Tags[TagKey]; dep != "" {
		l.d.remember(l.region, "fn:"+aws.ToString(in.FunctionName), []ec2types.TagSpecification{{Tags: []ec2types.Tag{{Key: aws.String(TagKey), Value: aws.String(dep)}}}})
	}
	return &lambda.CreateFunctionOutput{
		FunctionName: in.FunctionName,
		FunctionArn:  aws.String(l.arn(aws.ToString(in.FunctionName))),
	}, nil
}

func (l dryLambda) ListFunctions(_ context.Context, in *lambda.ListFunctionsInput, _ ...func(*lambda.Options)) (*lambda.ListFunctionsOutput, error) {
	l.d.print(l.region, "lambda:ListFunctions", in)
	out := &lambda.ListFunctionsOutput{}
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	var names []string
	for id := range l.d.made[l.region] {
		if name, ok := strings.CutPrefix(id, "fn:"); ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		out.Functions = append(out.Functions, ltypes.FunctionConfiguration{FunctionName: aws.String(name), FunctionArn: aws.String(l.arn(name))})
	}
	return out, nil
}

func (l dryLambda) ListTags(_ context.Context, in *lambda.ListTagsInput, _ ...func(*lambda.Options)) (*lambda.ListTagsOutput, error) {
	l.d.print(l.region, "lambda:ListTags", in)
	name := strings.TrimPrefix(aws.ToString(in.Resource), l.arn(""))
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	if dep, ok := l.d.made[l.region]["fn:"+name]; ok {
		return &lambda.ListTagsOutput{Tags: map[string]string{TagKey: dep}}, nil
	}
	return &lambda.ListTagsOutput{}, nil
}

func (l dryLambda) DeleteFunction(_ context.Context, in *lambda.DeleteFunctionInput, _ ...func(*lambda.Options)) (*lambda.DeleteFunctionOutput, error) {
	l.d.print(l.region, "lambda:DeleteFunction", in)
	l.d.forget(l.region, "fn:"+aws.ToString(in.FunctionName))
	return &lambda.DeleteFunctionOutput{}, nil
}

// arn is the made-up ARN of function name in the dry run's region.
func (l dryLambda) arn(name string) string {
	return "arn:aws:lambda:" + l.region + ":000000000000:function:" + name
}

// terminate marks instance id of region terminated.
func (d *DryRun) terminate(region, id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.made[region][id]; ok {
		d.made[region][id] = ""
	}
}

// terminated reports whether instance id of region was terminated.
func (d *DryRun) terminated(region, id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	dep, ok := d.made[region][id]
	return ok && dep == ""
}
