package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/blossom-dso/blossom/dso/dsotest"
)

func init() { root.AddCommand(newCertsCmd()) }

func newCertsCmd() *cobra.Command {
	var dir, hosts string
	var valid time.Duration
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make a test CA, a server and a client certificate for TLS",
		Long: `Write into --dir a test certificate authority (ca.pem, ca-key.pem), a server
certificate signed by it for --hosts (server.pem, server-key.pem) and a client
certificate for mutual TLS (client.pem, client-key.pem). ECDSA P-256 keys,
written with mode 0600. For tests and private clusters; a production cluster
should use its organisation's CA.`,
		Example: `  blossom certs --dir certs --hosts 127.0.0.1,localhost
  blossom server --tls-cert certs/server.pem --tls-key certs/server-key.pem --tls-client-ca certs/ca.pem
  blossom counter -n c increment --tls-ca certs/ca.pem --tls-cert certs/client.pem --tls-key certs/client-key.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var hs []string
			for _, h := range strings.Split(hosts, ",") {
				if h = strings.TrimSpace(h); h != "" {
					hs = append(hs, h)
				}
			}
			if len(hs) == 0 {
				return &exitError{2, fmt.Errorf("--hosts is empty")}
			}
			if err := dsotest.WriteCerts(dir, hs, valid); err != nil {
				return &exitError{1, err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s/{ca,server,client}.pem and their -key.pem files (server valid for %s)\n", dir, strings.Join(hs, ", "))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "certs", "directory to write the files into")
	f.StringVar(&hosts, "hosts", "127.0.0.1,localhost,::1", "comma-separated IP addresses and DNS names of the servers")
	f.DurationVar(&valid, "valid", 365*24*time.Hour, "validity of the certificates")
	return cmd
}
