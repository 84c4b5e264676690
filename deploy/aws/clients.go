package awsdeploy

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// sdkClients are the SDK's clients, one pair per region, made on first use
// from one loaded configuration.
type sdkClients struct {
	cfg      aws.Config
	endpoint string
	mu       sync.Mutex
	ec2      map[string]*ec2.Client
	lam      map[string]*lambda.Client
}

// NewClients loads the SDK's default configuration — credentials from its
// standard chain (environment variables, the shared config and credentials
// files, SSO, the instance's role), nothing from this repository — and
// returns clients of it. endpoint, if not empty, replaces every service's
// endpoint (the SDK's BaseEndpoint): tests point it at a local stub.
func NewClients(ctx context.Context, endpoint string, opts ...func(*config.LoadOptions) error) (Clients, error) {
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("awsdeploy: loading the AWS configuration: %w", err)
	}
	return FromConfig(cfg, endpoint), nil
}

// FromConfig returns clients of an already loaded configuration; endpoint
// is as in NewClients.
func FromConfig(cfg aws.Config, endpoint string) Clients {
	return &sdkClients{cfg: cfg, endpoint: endpoint, ec2: map[string]*ec2.Client{}, lam: map[string]*lambda.Client{}}
}

func (s *sdkClients) EC2(region string) EC2API {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.ec2[region]; c != nil {
		return c
	}
	c := ec2.NewFromConfig(s.cfg, func(o *ec2.Options) {
		o.Region = region
		if s.endpoint != "" {
			o.BaseEndpoint = aws.String(s.endpoint)
		}
	})
	s.ec2[region] = c
	return c
}

func (s *sdkClients) Lambda(region string) LambdaAPI {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.lam[region]; c != nil {
		return c
	}
	c := lambda.NewFromConfig(s.cfg, func(o *lambda.Options) {
		o.Region = region
		if s.endpoint != "" {
			o.BaseEndpoint = aws.String(s.endpoint)
		}
	})
	s.lam[region] = c
	return c
}
