package awsdeploy

import (
	"fmt"
	"strings"
)

// UnitName is the systemd unit the user data installs on every instance.
const UnitName = "blossom-agent.service"

// UserData returns the boot script of the instances of region r: it
// downloads the blossom binary from c.BinaryURL, checks its SHA-256 against
// c.BinarySHA256 (a mismatch stops the boot script before anything runs),
// installs it as /usr/local/bin/blossom and starts the systemd unit
// UnitName, which runs `blossom exp agent` on c.AgentPort for the site r.
// The agent starts and stops the replicas an experiment asks for. The
// script holds no credentials.
func UserData(c Config, r string) string {
	c.defaults()
	var b strings.Builder
	fmt.Fprintf(&b, `#!/bin/bash
# Blossom deployment %[1]s, region %[2]s: the blossom binary and its agent unit.
set -euo pipefail
curl -fsSL --retry 5 -o /tmp/blossom %[3]q
echo "%[4]s  /tmp/blossom" | sha256sum -c -
install -m 0755 /tmp/blossom /usr/local/bin/blossom
useradd --system --home-dir /var/lib/blossom --create-home blossom || true
cat > /etc/systemd/system/%[5]s <<'UNIT'
[Unit]
Description=Blossom experiment agent (deployment %[1]s)
After=network-online.target
Wants=network-online.target

[Service]
User=blossom
WorkingDirectory=/var/lib/blossom
ExecStart=/usr/local/bin/blossom exp agent --listen 0.0.0.0:%[6]d --site %[2]s --data-dir /var/lib/blossom/agent
Restart=on-failure
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now %[5]s
`, c.ID, r, c.BinaryURL, c.BinarySHA256, UnitName, c.AgentPort)
	return b.String()
}
