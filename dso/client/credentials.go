package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// The environment variables that Credentials.FromEnv reads. Functions run
// by the executor get their credentials this way: a process worker inherits
// its caller's environment, and a Lambda function has them in its
// configuration, so no token travels in an invocation's payload.
const (
	EnvToken   = "BLOSSOM_TOKEN"    // the authentication token
	EnvTLSCA   = "BLOSSOM_TLS_CA"   // PEM file of the CA that signed the servers: connect with TLS
	EnvTLSCert = "BLOSSOM_TLS_CERT" // PEM client certificate, for mutual TLS
	EnvTLSKey  = "BLOSSOM_TLS_KEY"  // PEM private key of the client certificate
)

// Credentials name what a client presents to secured servers: a token and
// the PEM files of TLS. The zero value means neither.
type Credentials struct {
	Token                  string
	TLSCA, TLSCert, TLSKey string
}

// FromEnv fills every empty field of c from its environment variable
// (EnvToken, EnvTLSCA, EnvTLSCert, EnvTLSKey) and returns c.
func (c Credentials) FromEnv() Credentials {
	for _, f := range []struct {
		v   *string
		env string
	}{{&c.Token, EnvToken}, {&c.TLSCA, EnvTLSCA}, {&c.TLSCert, EnvTLSCert}, {&c.TLSKey, EnvTLSKey}} {
		if *f.v == "" {
			*f.v = os.Getenv(f.env)
		}
	}
	return c
}

// Apply sets o.Token and, if c names a CA or a client certificate, o.TLS
// (loaded from the files now). A missing or unreadable file is an error
// that names it; o is unchanged then.
func (c Credentials) Apply(o *Options) error {
	if c.TLSCA != "" || c.TLSCert != "" || c.TLSKey != "" {
		cfg, err := LoadTLS(c.TLSCA, c.TLSCert, c.TLSKey)
		if err != nil {
			return err
		}
		o.TLS = cfg
	}
	o.Token = c.Token
	return nil
}

// LoadTLS returns the TLS configuration of a client from PEM files: the CA
// that signed the servers' certificates (empty: the system's roots) and,
// for mutual TLS, a client certificate and its key (both empty: none).
func LoadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("dso/client: TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("dso/client: TLS CA %s: no PEM certificate found", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("dso/client: TLS client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
