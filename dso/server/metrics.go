package server

import (
	"context"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/runner"
)

// maxMethodLabels bounds the method names counted under their own label
// per type; calls of further ones are counted under method "other". Calls
// of a method the type does not have are counted under "unknown", so a
// client cannot grow the label set with made-up names.
const maxMethodLabels = 64

// latencyBuckets are the upper bounds, in seconds, of the call latency
// histogram: from one microsecond (a counter increment) to ten seconds.
var latencyBuckets = []float64{1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 10e-3, 100e-3, 1, 10}

// metrics are a server's Prometheus metrics. The call path touches only
// handles resolved once per type and method (an atomic add per counter,
// one histogram observation per call); the gauges and byte counters are
// computed when scraped.
type metrics struct {
	calls     *prometheus.CounterVec                   // type, method
	latency   *prometheus.HistogramVec                 // type
	errs      *prometheus.CounterVec                   // code
	errByCode [wire.CodeClosing + 1]prometheus.Counter // [0]: code "other"

	conns, parked, objects, buffered *prometheus.Desc
	leader, applied, logIndex        *prometheus.Desc // of the replicas of persistent objects
	reads                            *prometheus.Desc // of the level instances that serve reads locally
	read, written                    *prometheus.Desc

	// Bytes of connections already closed; guarded by Server.mu.
	closedRead, closedWritten uint64
}

func newMetrics() *metrics {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "blossom_dso_calls_total",
			Help: "Object calls run by this node, by object type and method (method \"unknown\": not a method of the type; \"other\": beyond the first 64 method names of a type).",
		}, []string{"type", "method"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "blossom_dso_call_duration_seconds",
			Help:    "Time this node spent on an object call, from the table lookup to the result (object lock wait included; a parked call until it parked), by object type.",
			Buckets: latencyBuckets,
		}, []string{"type"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "blossom_dso_call_errors_total",
			Help: "Object calls that failed, by error code (unknown types and calls for another node included).",
		}, []string{"code"}),
		conns:    prometheus.NewDesc("blossom_dso_connections", "Open client connections.", nil, nil),
		parked:   prometheus.NewDesc("blossom_dso_parked_calls", "Calls of client connections parked on an object (barrier, semaphore, future, ...).", nil, nil),
		objects:  prometheus.NewDesc("blossom_dso_objects", "Objects held by this node, by type.", []string{"type"}, nil),
		buffered: prometheus.NewDesc("blossom_dso_buffered_bytes", "Bytes reserved for large request bodies being received.", nil, nil),
		read:     prometheus.NewDesc("blossom_dso_read_bytes_total", "Bytes read from client connections (after TLS).", nil, nil),
		written:  prometheus.NewDesc("blossom_dso_written_bytes_total", "Bytes written to client connections (before TLS).", nil, nil),
		leader: prometheus.NewDesc("blossom_dso_replica_leader",
			"Node id of the leader of a replica group of persistent objects as this node's replica sees it (0: none known, or a leaderless protocol), by group.", []string{"group"}, nil),
		applied: prometheus.NewDesc("blossom_dso_replica_applied_total",
			"Commands of persistent objects this node's replica of a group applied since it started, by group.", []string{"group"}, nil),
		reads: prometheus.NewDesc("blossom_dso_replica_reads_total",
			"Reads of persistent objects at a degradation level whose replicas serve reads locally (sequential), by group, level and path: served from this node's replica (path=\"local\") or sent through the group's log (path=\"log\"), since the replica started.", []string{"group", "level", "path"}, nil),
		logIndex: prometheus.NewDesc("blossom_dso_replica_log_index",
			"Index of the last record of this node's replica of a group, written (kind=\"last\") and durable (kind=\"durable\"), by group.", []string{"group", "kind"}, nil),
	}
	m.errByCode[0] = m.errs.WithLabelValues("other")
	for c := wire.CodeInternal; c <= wire.CodeClosing; c++ {
		m.errByCode[c] = m.errs.WithLabelValues(c.String())
	}
	return m
}

// errCounter returns the error counter of code.
func (m *metrics) errCounter(code wire.Code) prometheus.Counter {
	if int(code) < len(m.errByCode) {
		return m.errByCode[code]
	}
	return m.errByCode[0]
}

// callStats are the metric handles of one type.
type callStats struct {
	latency prometheus.Observer
	mu      sync.Mutex                                    // serializes additions to methods
	methods atomic.Pointer[map[string]prometheus.Counter] // copy on write
	unknown prometheus.Counter
	other   prometheus.Counter
}

func (m *metrics) newCallStats(typ string) *callStats {
	cs := &callStats{latency: m.latency.WithLabelValues(typ),
		unknown: m.calls.WithLabelValues(typ, "unknown"), other: m.calls.WithLabelValues(typ, "other")}
	cs.methods.Store(&map[string]prometheus.Counter{})
	return cs
}

// counter returns the call counter of method, or the "other" counter for a
// name that gets no label of its own (beyond maxMethodLabels names, or not
// UTF-8, as label values must be); after the first call of a method it is
// a lookup in an immutable map.
func (cs *callStats) counter(m *metrics, typ, method string) prometheus.Counter {
	if c, ok := (*cs.methods.Load())[method]; ok {
		return c
	}
	if !utf8.ValidString(method) { // not a label value
		return cs.other
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	old := *cs.methods.Load()
	if c, ok := old[method]; ok {
		return c
	}
	if len(old) >= maxMethodLabels {
		return cs.other
	}
	nm := make(map[string]prometheus.Counter, len(old)+1)
	for k, v := range old {
		nm[k] = v
	}
	c := m.calls.WithLabelValues(typ, method)
	nm[method] = c
	cs.methods.Store(&nm)
	return c
}

// observe counts one call of method on a type and its latency.
func (s *Server) observe(t *typeTable, typ, method string, start time.Time, err error) {
	t.stats.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		code := dso.CodeOf(err)
		s.metrics.errCounter(code).Inc()
		if code == wire.CodeUnknownMethod {
			t.stats.unknown.Inc()
			return
		}
	}
	t.stats.counter(s.metrics, typ, method).Inc()
}

// Describe implements prometheus.Collector.
func (s *Server) Describe(ch chan<- *prometheus.Desc) {
	m := s.metrics
	m.calls.Describe(ch)
	m.latency.Describe(ch)
	m.errs.Describe(ch)
	for _, d := range []*prometheus.Desc{m.conns, m.parked, m.objects, m.buffered, m.read, m.written, m.leader, m.applied, m.logIndex, m.reads} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the call counters and latency
// histograms, and the connections, parked calls, objects and bytes as they
// are now.
func (s *Server) Collect(ch chan<- prometheus.Metric) {
	m := s.metrics
	m.calls.Collect(ch)
	m.latency.Collect(ch)
	m.errs.Collect(ch)
	s.mu.Lock()
	nconns := len(s.conns)
	read, written := m.closedRead, m.closedWritten
	parked := 0
	for c := range s.conns {
		read += c.nread.Load()
		written += c.nwritten.Load()
		c.pmu.Lock()
		parked += len(c.parked)
		c.pmu.Unlock()
	}
	s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(m.conns, prometheus.GaugeValue, float64(nconns))
	ch <- prometheus.MustNewConstMetric(m.parked, prometheus.GaugeValue, float64(parked))
	ch <- prometheus.MustNewConstMetric(m.buffered, prometheus.GaugeValue, float64(s.buffered.Load()))
	ch <- prometheus.MustNewConstMetric(m.read, prometheus.CounterValue, float64(read))
	ch <- prometheus.MustNewConstMetric(m.written, prometheus.CounterValue, float64(written))
	s.tables.Range(func(k, v any) bool {
		n := 0
		t := v.(*typeTable)
		for i := range t.shards {
			sh := &t.shards[i]
			sh.mu.RLock()
			n += sh.m.n + sh.sc.n
			sh.mu.RUnlock()
		}
		ch <- prometheus.MustNewConstMetric(m.objects, prometheus.GaugeValue, float64(n), k.(string))
		return true
	})
	s.collectReplicas(ch)
}

// replicaStatus is implemented by Replicas that report their replicas
// (runner.Host).
type replicaStatus interface {
	Status(ctx context.Context) ([]runner.Status, error)
}

// collectReplicas adds the metrics of this node's replicas of persistent
// objects, if its Replicas report them (within a second).
func (s *Server) collectReplicas(ch chan<- prometheus.Metric) {
	if s.rep == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	m := s.metrics
	if rs, ok := s.rep.Replicas.(replicaStatus); ok {
		if sts, err := rs.Status(ctx); err == nil {
			for _, st := range sts {
				g := strconv.FormatUint(uint64(st.Group), 10)
				ch <- prometheus.MustNewConstMetric(m.leader, prometheus.GaugeValue, float64(st.Leader), g)
				ch <- prometheus.MustNewConstMetric(m.applied, prometheus.CounterValue, float64(st.Executed), g)
				ch <- prometheus.MustNewConstMetric(m.logIndex, prometheus.GaugeValue, float64(st.LastIndex), g, "last")
				ch <- prometheus.MustNewConstMetric(m.logIndex, prometheus.GaugeValue, float64(st.DurableIndex), g, "durable")
			}
		}
	}
	ls, ok := s.rep.Replicas.(levelStatus)
	if !ok {
		return
	}
	lsts, err := ls.LevelStatus(ctx)
	if err != nil {
		return
	}
	for _, st := range lsts {
		if st.LocalReads == 0 && st.LoggedReads == 0 {
			continue
		}
		g := strconv.FormatUint(uint64(st.Group), 10)
		l := degradable.Level(st.Level + 1).String()
		ch <- prometheus.MustNewConstMetric(m.reads, prometheus.CounterValue, float64(st.LocalReads), g, l, "local")
		ch <- prometheus.MustNewConstMetric(m.reads, prometheus.CounterValue, float64(st.LoggedReads), g, l, "log")
	}
}

// levelStatus is implemented by Replicas that report their level
// instances (runner.Host).
type levelStatus interface {
	LevelStatus(ctx context.Context) ([]runner.Status, error)
}

var _ prometheus.Collector = (*Server)(nil)

// AdminHandler serves the metrics of g at /metrics and, if withPprof, the
// net/http/pprof profiles under /debug/pprof/; every other path is 404.
func AdminHandler(g prometheus.Gatherer, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// countReader counts the bytes a connection reads.
type countReader struct{ c *conn }

func (r countReader) Read(p []byte) (int, error) {
	n, err := r.c.src.Read(p)
	r.c.nread.Add(uint64(n))
	return n, err
}

// countWriter counts the bytes a connection writes.
type countWriter struct{ c *conn }

func (w countWriter) Write(p []byte) (int, error) {
	n, err := w.c.dst.Write(p)
	w.c.nwritten.Add(uint64(n))
	return n, err
}
