package barrier

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Server is one or more server processes on loopback, children of this
// process, started for one measurement.
type Server struct {
	// Addrs are the client addresses (host:port), one per process.
	Addrs []string
	procs []*exec.Cmd
	done  []chan struct{} // closed when procs[i] has exited
	dir   string          // removed by Stop; "" if none
}

// start starts cmd and watches for its exit.
func (s *Server) start(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.procs, s.done = append(s.procs, cmd), append(s.done, done)
	return nil
}

// Stop ends the processes (SIGTERM, then SIGKILL after 5 s), waits for
// them and removes their temporary directory.
func (s *Server) Stop() error {
	for _, p := range s.procs {
		p.Process.Signal(syscall.SIGTERM)
	}
	for i, p := range s.procs {
		select {
		case <-s.done[i]:
		case <-time.After(5 * time.Second):
			p.Process.Kill()
			<-s.done[i]
		}
	}
	if s.dir != "" {
		return os.RemoveAll(s.dir)
	}
	return nil
}

// ErrMissing is wrapped by the Start functions' error when the server's
// program is not installed; the error names the Debian package.
var ErrMissing = errors.New("not installed")

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitFor calls ready every 50 ms until it returns nil, ctx ends, one of
// the processes exits or 60 s pass.
func (s *Server) waitFor(ctx context.Context, what string, ready func() error) error {
	exited := make(chan struct{}, len(s.done))
	for _, d := range s.done {
		go func() {
			select {
			case <-d:
				exited <- struct{}{}
			case <-ctx.Done():
			}
		}()
	}
	deadline := time.After(60 * time.Second)
	var last error
	for {
		if last = ready(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return fmt.Errorf("%s exited", what)
		case <-deadline:
			return fmt.Errorf("%s not ready after 60 s: %w", what, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StartRedis starts redis-server on a free loopback port, without
// persistence, accepting 10,000 clients.
func StartRedis(ctx context.Context) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("barrier: redis-server %w (Debian: apt-get install redis-server, or make figure-peers)", ErrMissing)
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", fmt.Sprint(ports[0]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--maxclients", "10000", "--loglevel", "warning")
	s := &Server{Addrs: []string{fmt.Sprintf("127.0.0.1:%d", ports[0])}}
	if err := s.start(cmd); err != nil {
		return nil, err
	}
	if err := s.waitFor(ctx, "redis-server", func() error { return ping(s.Addrs[0], "PING\r\n", "+PONG") }); err != nil {
		s.Stop()
		return nil, fmt.Errorf("barrier: %w", err)
	}
	return s, nil
}

// ping sends req to addr and checks that the answer starts with want.
func ping(addr, req, want string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return err
	}
	// Read until the answer holds want, the server closes (ZooKeeper's
	// four-letter words) or the deadline passes.
	var got []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(got), want) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil || len(got) > 1<<16 {
			return fmt.Errorf("%s answered %q to %q", addr, got, strings.TrimSpace(req))
		}
	}
	return nil
}

// ZooKeeperJar is the jar of Debian's zookeeper package (a dependency of
// zookeeperd), whose manifest names the jars it needs.
var ZooKeeperJar = "/usr/share/java/zookeeper.jar"

// StartZooKeeper starts a ZooKeeper ensemble of nodes servers (1: a
// standalone server) from Debian's zookeeperd installation, on free
// loopback ports, each with its data directory in a new temporary
// directory, and waits until every server serves requests. It never
// touches the system's ZooKeeper service or its configuration.
func StartZooKeeper(ctx context.Context, nodes int) (*Server, error) {
	if nodes < 1 {
		return nil, fmt.Errorf("barrier: StartZooKeeper: %d nodes", nodes)
	}
	java, err := exec.LookPath("java")
	if _, serr := os.Stat(ZooKeeperJar); err != nil || serr != nil {
		return nil, fmt.Errorf("barrier: zookeeper (%s and java) %w (Debian: apt-get install zookeeperd, or make figure-peers)", ZooKeeperJar, ErrMissing)
	}
	ports, err := freePorts(3 * nodes)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "blossom-zookeeper-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir}
	var ensemble strings.Builder
	if nodes > 1 {
		for i := range nodes {
			fmt.Fprintf(&ensemble, "server.%d=127.0.0.1:%d:%d\n", i+1, ports[3*i+1], ports[3*i+2])
		}
	}
	// Logging: warnings and worse to DIR/nodeN/zookeeper.log (Debian's jar
	// reads log4j.properties from the classpath's first folder).
	for i := range nodes {
		node := filepath.Join(dir, fmt.Sprintf("node%d", i+1))
		data := filepath.Join(node, "data")
		if err := os.MkdirAll(data, 0o755); err != nil {
			s.Stop()
			return nil, err
		}
		cfg := fmt.Sprintf(`tickTime=2000
initLimit=10
syncLimit=5
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
%s`, data, ports[3*i], ensemble.String())
		log4j := fmt.Sprintf(`log4j.rootLogger=WARN, F
log4j.appender.F=org.apache.log4j.FileAppender
log4j.appender.F.File=%s
log4j.appender.F.layout=org.apache.log4j.PatternLayout
log4j.appender.F.layout.ConversionPattern=%%d %%p %%c: %%m%%n
`, filepath.Join(node, "zookeeper.log"))
		files := map[string]string{"zoo.cfg": cfg, "log4j.properties": log4j}
		if nodes > 1 {
			files[filepath.Join("data", "myid")] = fmt.Sprintln(i + 1)
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(node, name), []byte(body), 0o644); err != nil {
				s.Stop()
				return nil, err
			}
		}
		out, err := os.Create(filepath.Join(node, "stdout.log"))
		if err != nil {
			s.Stop()
			return nil, err
		}
		cmd := exec.Command(java, "-Xmx512m", "-Dzookeeper.log.dir="+node, "-cp", node+":"+ZooKeeperJar,
			"org.apache.zookeeper.server.quorum.QuorumPeerMain", filepath.Join(node, "zoo.cfg"))
		cmd.Stdout, cmd.Stderr = out, out
		err = s.start(cmd)
		out.Close()
		if err != nil {
			s.Stop()
			return nil, err
		}
		s.Addrs = append(s.Addrs, fmt.Sprintf("127.0.0.1:%d", ports[3*i]))
	}
	err = s.waitFor(ctx, "zookeeper", func() error {
		for _, a := range s.Addrs {
			if err := ping(a, "srvr", "Mode: "); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("barrier: %w", err)
	}
	return s, nil
}

// StartBlossom starts `bin server` (a blossom binary) on a free loopback
// port and waits for its "listening on" line.
func StartBlossom(ctx context.Context, bin string) (*Server, error) {
	if bin == "" {
		return nil, errors.New("barrier: no blossom binary to start a server with")
	}
	cmd := exec.Command(bin, "server", "--listen", "127.0.0.1:0", "--log-level", "error")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	s := &Server{}
	if err := s.start(cmd); err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		lines <- line
		io.Copy(io.Discard, r)
	}()
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "blossom server listening on ")
		if !ok {
			s.Stop()
			return nil, fmt.Errorf("barrier: %s server printed %q, not its address", bin, line)
		}
		s.Addrs = []string{addr}
		return s, nil
	case <-ctx.Done():
		s.Stop()
		return nil, ctx.Err()
	}
}
