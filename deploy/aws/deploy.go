// Package awsdeploy deploys a Blossom cluster on AWS and tears it down: EC2
// instances in chosen regions, one Elastic IP per instance (allocated first,
// so every address is known before any machine boots), one security group
// per region admitting only the cluster's addresses and the operator's, the
// blossom binary and a systemd unit (the experiment agent, `blossom exp
// agent`) installed by user data, and optionally a Lambda function per
// region for the executor. Every resource it creates carries the tag
// TagKey=<deployment id>; Teardown finds and deletes everything with that
// tag, so it needs no state file and is safe to run twice.
//
// The package talks to AWS only through the EC2API and LambdaAPI
// interfaces, which the SDK's *ec2.Client and *lambda.Client satisfy.
// Credentials come from the SDK's standard chain (environment, shared
// config, instance role) when the caller builds the clients with
// NewClients; this package reads no credentials itself. DryRun returns
// clients that print every call instead of making it.
package awsdeploy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	ltypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TagKey is the tag every created resource carries; its value is the
// deployment id.
const TagKey = "blossom-deployment"

// DefaultImage is the image of the instances: the latest Amazon Linux 2023
// for x86-64, resolved by EC2 from the public SSM parameter in every region.
const DefaultImage = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"

// The default ports: replica-to-replica traffic, the replicas' HTTP client
// API, and the experiment agent.
const (
	DefaultPeerPort   = 7500
	DefaultClientPort = 7601
	DefaultAgentPort  = 7700
)

// EC2API is the part of the EC2 API a deployment uses; *ec2.Client
// implements it.
type EC2API interface {
	CreateSecurityGroup(context.Context, *ec2.CreateSecurityGroupInput, ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	AllocateAddress(context.Context, *ec2.AllocateAddressInput, ...func(*ec2.Options)) (*ec2.AllocateAddressOutput, error)
	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	AssociateAddress(context.Context, *ec2.AssociateAddressInput, ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error)
	TerminateInstances(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	DescribeAddresses(context.Context, *ec2.DescribeAddressesInput, ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error)
	ReleaseAddress(context.Context, *ec2.ReleaseAddressInput, ...func(*ec2.Options)) (*ec2.ReleaseAddressOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DeleteSecurityGroup(context.Context, *ec2.DeleteSecurityGroupInput, ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error)
}

// LambdaAPI is the part of the Lambda API a deployment uses; *lambda.Client
// implements it.
type LambdaAPI interface {
	CreateFunction(context.Context, *lambda.CreateFunctionInput, ...func(*lambda.Options)) (*lambda.CreateFunctionOutput, error)
	ListFunctions(context.Context, *lambda.ListFunctionsInput, ...func(*lambda.Options)) (*lambda.ListFunctionsOutput, error)
	ListTags(context.Context, *lambda.ListTagsInput, ...func(*lambda.Options)) (*lambda.ListTagsOutput, error)
	DeleteFunction(context.Context, *lambda.DeleteFunctionInput, ...func(*lambda.Options)) (*lambda.DeleteFunctionOutput, error)
}

// Clients returns the API clients of a region.
type Clients interface {
	EC2(region string) EC2API
	Lambda(region string) LambdaAPI
}

// Config is one deployment's description. Validate checks it; Deploy
// fills in the defaults of the zero fields.
type Config struct {
	// ID names the deployment: the value of every resource's TagKey tag and
	// part of every resource's name. Letters, digits and '-', at most 32.
	ID string
	// Regions are the AWS regions, one or more, without repeats; nodes are
	// numbered 1.. in this order, PerRegion per region.
	Regions []string
	// PerRegion is the number of instances per region (default 1).
	PerRegion int
	// InstanceType is the EC2 instance type (default t3.small).
	InstanceType string
	// Image is the AMI id or a resolve:ssm: alias (default DefaultImage).
	Image string
	// OperatorCIDR is the operator's address range (e.g. 198.51.100.7/32):
	// the only source, besides the cluster's own addresses, the security
	// groups admit (ssh and the agent port). 0.0.0.0/0 is refused.
	OperatorCIDR string
	// BinaryURL is where the instances download the blossom binary (linux,
	// amd64) at boot, over HTTPS; BinarySHA256 its hex SHA-256, checked
	// before it is installed.
	BinaryURL, BinarySHA256 string
	// PeerPort, ClientPort and AgentPort are the ports of replica traffic,
	// the replicas' client API and the experiment agent (defaults
	// DefaultPeerPort, DefaultClientPort, DefaultAgentPort).
	PeerPort, ClientPort, AgentPort int
	// LambdaZip, if not empty, is the deployment package (a zip whose
	// bootstrap is the blossom binary) of one executor function per region,
	// named FunctionName(ID), running as LambdaRole (an IAM role ARN).
	LambdaZip  []byte
	LambdaRole string
	// Poll is the interval between two DescribeInstances calls while
	// waiting for instances to run or terminate (default 5 s); Timeout
	// bounds each wait (default 10 min).
	Poll, Timeout time.Duration
}

func (c *Config) defaults() {
	if c.PerRegion == 0 {
		c.PerRegion = 1
	}
	if c.InstanceType == "" {
		c.InstanceType = "t3.small"
	}
	if c.Image == "" {
		c.Image = DefaultImage
	}
	if c.PeerPort == 0 {
		c.PeerPort = DefaultPeerPort
	}
	if c.ClientPort == 0 {
		c.ClientPort = DefaultClientPort
	}
	if c.AgentPort == 0 {
		c.AgentPort = DefaultAgentPort
	}
	if c.Poll == 0 {
		c.Poll = 5 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
}

// ValidID reports whether id is usable as a deployment id.
func ValidID(id string) error {
	if id == "" || len(id) > 32 {
		return fmt.Errorf("awsdeploy: deployment id %q: want 1 to 32 characters", id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("awsdeploy: deployment id %q: only letters, digits and '-'", id)
		}
	}
	return nil
}

// Validate checks the configuration after defaults; it does no I/O.
func (c *Config) Validate() error {
	c.defaults()
	if err := ValidID(c.ID); err != nil {
		return err
	}
	if len(c.Regions) == 0 {
		return errors.New("awsdeploy: no regions")
	}
	seen := map[string]bool{}
	for _, r := range c.Regions {
		if r == "" || seen[r] {
			return fmt.Errorf("awsdeploy: region %q empty or repeated", r)
		}
		seen[r] = true
	}
	if c.PerRegion < 1 {
		return fmt.Errorf("awsdeploy: %d instances per region", c.PerRegion)
	}
	p, err := netip.ParsePrefix(c.OperatorCIDR)
	if err != nil {
		return fmt.Errorf("awsdeploy: operator address range: %w", err)
	}
	if p.Bits() == 0 {
		return fmt.Errorf("awsdeploy: operator address range %s admits every address", p)
	}
	if !strings.HasPrefix(c.BinaryURL, "https://") {
		return fmt.Errorf("awsdeploy: binary URL %q: want https://", c.BinaryURL)
	}
	if len(c.BinarySHA256) != 64 {
		return fmt.Errorf("awsdeploy: binary SHA-256 %q: want 64 hex digits", c.BinarySHA256)
	}
	if len(c.LambdaZip) > 0 && c.LambdaRole == "" {
		return errors.New("awsdeploy: a Lambda package needs a role ARN")
	}
	return nil
}

// FunctionName is the name of the executor function of deployment id.
func FunctionName(id string) string { return "blossom-" + id + "-executor" }

// groupName is the security group's name in every region.
func groupName(id string) string { return "blossom-" + id }

// Node is one deployed instance.
type Node struct {
	// ID is the node's number, 1.. in region order: its replica id.
	ID uint32 `json:"id"`
	// Region is its AWS region.
	Region string `json:"region"`
	// InstanceID and AllocationID are its EC2 instance and Elastic IP.
	InstanceID   string `json:"instance_id"`
	AllocationID string `json:"allocation_id"`
	// PublicIP is its Elastic IP address.
	PublicIP string `json:"public_ip"`
}

// Deployment is the result of Deploy.
type Deployment struct {
	ID string `json:"id"`
	// Nodes are the instances in node-id order.
	Nodes []Node `json:"nodes"`
	// AgentPort, PeerPort and ClientPort are the ports the nodes use.
	AgentPort  int `json:"agent_port"`
	PeerPort   int `json:"peer_port"`
	ClientPort int `json:"client_port"`
	// Functions are the executor functions' ARNs by region.
	Functions map[string]string `json:"functions,omitempty"`
}

func tagSpec(rt ec2types.ResourceType, id string) ec2types.TagSpecification {
	return ec2types.TagSpecification{ResourceType: rt, Tags: []ec2types.Tag{
		{Key: aws.String(TagKey), Value: aws.String(id)},
		{Key: aws.String("Name"), Value: aws.String("blossom-" + id)},
	}}
}

func tagFilter(id string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String("tag:" + TagKey), Values: []string{id}}
}

// Deploy creates the deployment c describes, in this order: per region a
// security group; per node an Elastic IP; per region the group's ingress
// rules (the peer and client ports from every node's address, ssh and the
// agent port from the operator's range); per region the instances, with
// the user data of UserData; then it waits until every instance runs,
// associates each node's address, and creates the Lambda functions. On an
// error it returns what it created so far beside the error; Teardown of
// c.ID deletes it.
func Deploy(ctx context.Context, cl Clients, c Config) (*Deployment, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	d := &Deployment{ID: c.ID, AgentPort: c.AgentPort, PeerPort: c.PeerPort, ClientPort: c.ClientPort}
	groups := map[string]string{}
	for _, r := range c.Regions {
		out, err := cl.EC2(r).CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName:         aws.String(groupName(c.ID)),
			Description:       aws.String("Blossom deployment " + c.ID + ": the cluster's and the operator's addresses only"),
			TagSpecifications: []ec2types.TagSpecification{tagSpec(ec2types.ResourceTypeSecurityGroup, c.ID)},
		})
		if err != nil {
			return d, fmt.Errorf("awsdeploy: %s: CreateSecurityGroup: %w", r, err)
		}
		groups[r] = aws.ToString(out.GroupId)
	}
	id := uint32(0)
	for _, r := range c.Regions {
		for range c.PerRegion {
			out, err := cl.EC2(r).AllocateAddress(ctx, &ec2.AllocateAddressInput{
				Domain:            ec2types.DomainTypeVpc,
				TagSpecifications: []ec2types.TagSpecification{tagSpec(ec2types.ResourceTypeElasticIp, c.ID)},
			})
			if err != nil {
				return d, fmt.Errorf("awsdeploy: %s: AllocateAddress: %w", r, err)
			}
			id++
			d.Nodes = append(d.Nodes, Node{ID: id, Region: r, AllocationID: aws.ToString(out.AllocationId), PublicIP: aws.ToString(out.PublicIp)})
		}
	}
	var cluster []ec2types.IpRange
	for _, n := range d.Nodes {
		cluster = append(cluster, ec2types.IpRange{CidrIp: aws.String(n.PublicIP + "/32"), Description: aws.String(fmt.Sprintf("node %d (%s)", n.ID, n.Region))})
	}
	operator := []ec2types.IpRange{{CidrIp: aws.String(c.OperatorCIDR), Description: aws.String("operator")}}
	perm := func(from, to int, ranges []ec2types.IpRange) ec2types.IpPermission {
		return ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(int32(from)), ToPort: aws.Int32(int32(to)), IpRanges: ranges}
	}
	for _, r := range c.Regions {
		_, err := cl.EC2(r).AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
			GroupId: aws.String(groups[r]),
			IpPermissions: []ec2types.IpPermission{
				perm(c.PeerPort, c.PeerPort, cluster),
				perm(c.ClientPort, c.ClientPort, cluster),
				perm(22, 22, operator),
				perm(c.AgentPort, c.AgentPort, operator),
			},
		})
		if err != nil {
			return d, fmt.Errorf("awsdeploy: %s: AuthorizeSecurityGroupIngress: %w", r, err)
		}
	}
	for _, r := range c.Regions {
		out, err := cl.EC2(r).RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId:          aws.String(c.Image),
			InstanceType:     ec2types.InstanceType(c.InstanceType),
			MinCount:         aws.Int32(int32(c.PerRegion)),
			MaxCount:         aws.Int32(int32(c.PerRegion)),
			SecurityGroupIds: []string{groups[r]},
			UserData:         aws.String(base64.StdEncoding.EncodeToString([]byte(UserData(c, r)))),
			ClientToken:      aws.String("blossom-" + c.ID + "-" + r),
			TagSpecifications: []ec2types.TagSpecification{
				tagSpec(ec2types.ResourceTypeInstance, c.ID), tagSpec(ec2types.ResourceTypeVolume, c.ID),
			},
		})
		if err != nil {
			return d, fmt.Errorf("awsdeploy: %s: RunInstances: %w", r, err)
		}
		if len(out.Instances) != c.PerRegion {
			return d, fmt.Errorf("awsdeploy: %s: RunInstances started %d instances, want %d", r, len(out.Instances), c.PerRegion)
		}
		k := 0
		for i := range d.Nodes {
			if d.Nodes[i].Region == r {
				d.Nodes[i].InstanceID = aws.ToString(out.Instances[k].InstanceId)
				k++
			}
		}
	}
	for _, r := range c.Regions {
		if err := waitState(ctx, cl.EC2(r), d.instances(r), ec2types.InstanceStateNameRunning, c); err != nil {
			return d, fmt.Errorf("awsdeploy: %s: %w", r, err)
		}
	}
	for _, n := range d.Nodes {
		_, err := cl.EC2(n.Region).AssociateAddress(ctx, &ec2.AssociateAddressInput{
			AllocationId: aws.String(n.AllocationID), InstanceId: aws.String(n.InstanceID),
		})
		if err != nil {
			return d, fmt.Errorf("awsdeploy: %s: AssociateAddress %s: %w", n.Region, n.InstanceID, err)
		}
	}
	if len(c.LambdaZip) > 0 {
		d.Functions = map[string]string{}
		var peers []string
		for _, n := range d.Nodes {
			peers = append(peers, fmt.Sprintf("%s:%d", n.PublicIP, c.ClientPort))
		}
		for _, r := range c.Regions {
			out, err := cl.Lambda(r).CreateFunction(ctx, &lambda.CreateFunctionInput{
				FunctionName:  aws.String(FunctionName(c.ID)),
				Role:          aws.String(c.LambdaRole),
				Runtime:       ltypes.RuntimeProvidedal2023,
				Handler:       aws.String("bootstrap"),
				Architectures: []ltypes.Architecture{ltypes.ArchitectureX8664},
				Code:          &ltypes.FunctionCode{ZipFile: c.LambdaZip},
				Timeout:       aws.Int32(300),
				MemorySize:    aws.Int32(1024),
				Environment:   &ltypes.Environment{Variables: map[string]string{"BLOSSOM_SERVERS": strings.Join(peers, ",")}},
				Tags:          map[string]string{TagKey: c.ID},
			})
			if err != nil {
				return d, fmt.Errorf("awsdeploy: %s: CreateFunction: %w", r, err)
			}
			d.Functions[r] = aws.ToString(out.FunctionArn)
		}
	}
	return d, nil
}

// instances returns the instance ids of region r.
func (d *Deployment) instances(r string) []string {
	var ids []string
	for _, n := range d.Nodes {
		if n.Region == r && n.InstanceID != "" {
			ids = append(ids, n.InstanceID)
		}
	}
	return ids
}

// waitState polls DescribeInstances until every instance in ids is in
// state want, failing on a terminated instance while waiting for running.
func waitState(ctx context.Context, api EC2API, ids []string, want ec2types.InstanceStateName, c Config) error {
	if len(ids) == 0 {
		return nil
	}
	deadline := time.Now().Add(c.Timeout)
	for {
		out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
		if err != nil {
			return fmt.Errorf("DescribeInstances: %w", err)
		}
		ready, seen := 0, 0
		for _, res := range out.Reservations {
			for _, in := range res.Instances {
				seen++
				st := ec2types.InstanceStateName("")
				if in.State != nil {
					st = in.State.Name
				}
				switch {
				case st == want:
					ready++
				case want == ec2types.InstanceStateNameRunning && (st == ec2types.InstanceStateNameTerminated || st == ec2types.InstanceStateNameShuttingDown):
					return fmt.Errorf("instance %s is %s", aws.ToString(in.InstanceId), st)
				}
			}
		}
		if ready == len(ids) && seen == len(ids) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("instances %v: %d of %d %s after %s", ids, ready, len(ids), want, c.Timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.Poll):
		}
	}
}

// Teardown deletes every resource tagged TagKey=id in the regions: it
// terminates the instances and waits until they are gone, then releases the
// Elastic IPs, deletes the security groups and the Lambda functions. It
// deletes nothing without the tag, and a second call finds nothing to do.
// poll and timeout are as in Config (zero: the defaults).
func Teardown(ctx context.Context, cl Clients, id string, regions []string, poll, timeout time.Duration) error {
	if err := ValidID(id); err != nil {
		return err
	}
	c := Config{Poll: poll, Timeout: timeout}
	c.defaults()
	var errs []error
	for _, r := range regions {
		if err := teardownRegion(ctx, cl, id, r, c); err != nil {
			errs = append(errs, fmt.Errorf("awsdeploy: %s: %w", r, err))
		}
	}
	return errors.Join(errs...)
}

func teardownRegion(ctx context.Context, cl Clients, id, r string, c Config) error {
	api := cl.EC2(r)
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		tagFilter(id),
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped", "shutting-down"}},
	}})
	if err != nil {
		return fmt.Errorf("DescribeInstances: %w", err)
	}
	var ids []string
	for _, res := range out.Reservations {
		for _, in := range res.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	slices.Sort(ids)
	if len(ids) > 0 {
		if _, err := api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
			return fmt.Errorf("TerminateInstances: %w", err)
		}
		if err := waitState(ctx, api, ids, ec2types.InstanceStateNameTerminated, c); err != nil {
			return err
		}
	}
	addrs, err := api.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: []ec2types.Filter{tagFilter(id)}})
	if err != nil {
		return fmt.Errorf("DescribeAddresses: %w", err)
	}
	for _, a := range addrs.Addresses {
		if _, err := api.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: a.AllocationId}); err != nil {
			return fmt.Errorf("ReleaseAddress %s: %w", aws.ToString(a.AllocationId), err)
		}
	}
	sgs, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{tagFilter(id)}})
	if err != nil {
		return fmt.Errorf("DescribeSecurityGroups: %w", err)
	}
	for _, g := range sgs.SecurityGroups {
		if _, err := api.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: g.GroupId}); err != nil {
			return fmt.Errorf("DeleteSecurityGroup %s: %w", aws.ToString(g.GroupId), err)
		}
	}
	lam := cl.Lambda(r)
	var marker *string
	for {
		fs, err := lam.ListFunctions(ctx, &lambda.ListFunctionsInput{Marker: marker})
		if err != nil {
			return fmt.Errorf("ListFunctions: %w", err)
		}
		for _, f := range fs.Functions {
			if !strings.HasPrefix(aws.ToString(f.FunctionName), "blossom-") {
				continue
			}
			tags, err := lam.ListTags(ctx, &lambda.ListTagsInput{Resource: f.FunctionArn})
			if err != nil {
				return fmt.Errorf("ListTags %s: %w", aws.ToString(f.FunctionName), err)
			}
			if tags.Tags[TagKey] != id {
				continue
			}
			if _, err := lam.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: f.FunctionName}); err != nil {
				return fmt.Errorf("DeleteFunction %s: %w", aws.ToString(f.FunctionName), err)
			}
		}
		if fs.NextMarker == nil {
			return nil
		}
		marker = fs.NextMarker
	}
}
