package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// mutualTLS returns a config that presents and requires a self-signed
// certificate for 127.0.0.1.
func mutualTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "blossom test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

func TestTCPMutualTLS(t *testing.T) {
	noLeaks(t)
	ctx := testCtx(t)
	cfg := mutualTLS(t)
	nodes := cluster(t, 2, func(c *Config) { c.TLS = cfg })
	n1, n2 := nodes[0], nodes[1]
	sendUntil(ctx, t, n1, 1, n2.rec, 2, tag(1, 1))
	sendUntil(ctx, t, n2, 2, n1.rec, 1, tag(2, 1))

	// A plain-TCP peer cannot talk to a TLS node.
	plain := start(t, Config{Self: 1, Listen: "127.0.0.1:0",
		Peers: map[protocols.NodeID]string{2: addr(n2)}})
	for i := 0; n2.Stats().Refused == 0; i++ {
		plain.Send(2, tag(1, 100+i))
		select {
		case <-ctx.Done():
			t.Fatal("the TLS node never refused the plain peer")
		case <-time.After(5 * time.Millisecond):
		}
	}
	require.NotEmpty(t, n2.logs.messages("TLS handshake"))
	require.Zero(t, plain.Stats().Dialed)
	require.False(t, n2.rec.has(1, tag(1, 100)))
}
