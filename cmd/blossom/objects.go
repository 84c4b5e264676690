package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
)

// The object commands follow the serverless shell's syntax,
//
//	blossom TYPE -n NAME METHOD [ARGS...]
//
// so that the deliverable's scripts run as written:
//
//	blossom counter -n average increment -i 5
//	blossom barrier -n b await -p 100
//	blossom map -n m mergeAll a=1 b=2
func init() {
	for _, spec := range dsoObjectSpecs {
		root.AddCommand(newObjectCmd(spec))
	}
	root.AddCommand(newObjectsCmd())
}

// dsoCtorFlag is a constructor argument given as an integer flag.
type dsoCtorFlag struct {
	name, short, usage string
	def                int64
}

type dsoObjectSpec struct {
	use     string
	aliases []string
	typ     string
	short   string
	methods string
	ctor    []dsoCtorFlag
	example string
}

var dsoObjectSpecs = []dsoObjectSpec{
	{use: "counter", typ: dso.TypeCounter, short: "A shared counter",
		methods: "increment [-i N], decrement [-i N], tally, reset",
		example: "  blossom counter -n average increment -i 5\n  blossom counter -n average tally"},
	{use: "long", aliases: []string{"atomiclong"}, typ: dso.TypeAtomicLong, short: "A shared 64-bit integer (AtomicLong)",
		methods: "get, set V, getAndSet V, addAndGet D, getAndAdd D, incrementAndGet, decrementAndGet, compareAndSet E U, multiplyAndGet F",
		ctor:    []dsoCtorFlag{{"initial", "", "initial value if created", 0}},
		example: "  blossom long -n hits addAndGet -i 3"},
	{use: "int", aliases: []string{"atomicint"}, typ: dso.TypeAtomicInt, short: "A shared 32-bit integer (AtomicInt)",
		methods: "as long",
		ctor:    []dsoCtorFlag{{"initial", "", "initial value if created", 0}},
		example: "  blossom int -n iterations compareAndSet 3 4"},
	{use: "boolean", aliases: []string{"atomicboolean", "bool"}, typ: dso.TypeAtomicBoolean, short: "A shared boolean (AtomicBoolean)",
		methods: "get, set B, getAndSet B, compareAndSet E U",
		example: "  blossom boolean -n done set true"},
	{use: "reference", aliases: []string{"atomicreference", "ref"}, typ: dso.TypeAtomicReference, short: "A shared value (AtomicReference)",
		methods: "get, set V, getAndSet V, compareAndSet E U",
		example: "  blossom reference -n leader set node-3"},
	{use: "bytearray", aliases: []string{"atomicbytearray"}, typ: dso.TypeAtomicByteArray, short: "A shared array of bytes (AtomicByteArray)",
		methods: "length, get I, set I V, getAndSet I V, addAndGet I D, getAndAdd I D, compareAndSet I E U, toArray",
		ctor:    []dsoCtorFlag{{"length", "l", "length if created", 0}},
		example: "  blossom bytearray -n flags --length 16 set 3 1"},
	{use: "map", typ: dso.TypeMap, short: "A shared hash map",
		methods: "get K, put K V, putIfAbsent K V, remove K, containsKey K, merge K V [-c sum|max|min|replace], mergeAll K=V... or JSON [-c ...], keySet, values, entries, size, clear",
		example: "  blossom map -n m mergeAll a=1 b=2\n  blossom map -n m mergeAll '{\"a\": 5}' -c max\n  blossom map -n m entries"},
	{use: "set", typ: dso.TypeSet, short: "A shared set",
		methods: "add V, addAll [V...], remove V, contains V, size, members, clear",
		example: "  blossom set -n seen add url-1"},
	{use: "list", typ: dso.TypeList, short: "A shared list",
		methods: "add V, addAt I V, get I, set I V, removeAt I, remove V, indexOf V, contains V, size, toList, subList F T, clear",
		example: "  blossom list -n results add 42"},
	{use: "treemap", typ: dso.TypeTreeMap, short: "A shared sorted map",
		methods: "put K V, get K, remove K, containsKey K, size, firstKey, lastKey, floorKey K, ceilingKey K, higherKey K, lowerKey K, range FROM TO, keySet, clear",
		example: "  blossom treemap -n index range a m"},
	{use: "matrix", typ: dso.TypeMatrix, short: "A shared matrix of floats",
		methods: "rows, cols, get I J, set I J V, add I J D, getRow I, setRow I JSON, addRow I JSON, toArray",
		ctor:    []dsoCtorFlag{{"rows", "r", "rows if created", 0}, {"cols", "", "columns if created", 0}},
		example: "  blossom matrix -n img --rows 4 --cols 4 set 1 2 0.5"},
	{use: "blob", typ: dso.TypeBlob, short: "A shared byte string",
		methods: "read, write DATA, append DATA, size, readAt OFF N, writeAt OFF DATA (DATA - reads stdin)",
		example: "  echo hello | blossom blob -n b write -\n  blossom blob -n b read"},
	{use: "barrier", aliases: []string{"cyclicbarrier"}, typ: dso.TypeCyclicBarrier, short: "A shared cyclic barrier",
		methods: "await, getParties, getNumberWaiting, generation",
		ctor:    []dsoCtorFlag{{"parties", "p", "parties if created", 0}},
		example: "  blossom barrier -n b await -p 100"},
	{use: "sbarrier", aliases: []string{"scalablebarrier"}, typ: dso.TypeScalableCyclicBarrier, short: "A scalable (dissemination) cyclic barrier",
		methods: "await",
		ctor:    []dsoCtorFlag{{"parties", "p", "parties", 0}},
		example: "  blossom sbarrier -n b await -p 100"},
	{use: "semaphore", typ: dso.TypeSemaphore, short: "A shared counting semaphore",
		methods: "acquire [N], tryAcquire [N], release [N], availablePermits, drainPermits",
		ctor:    []dsoCtorFlag{{"permits", "p", "permits if created", 0}},
		example: "  blossom semaphore -n slots -p 4 acquire"},
	{use: "latch", aliases: []string{"countdownlatch"}, typ: dso.TypeCountDownLatch, short: "A shared count-down latch",
		methods: "countDown, getCount, await",
		ctor:    []dsoCtorFlag{{"count", "", "count if created", 0}},
		example: "  blossom latch -n ready --count 3 await"},
	{use: "future", typ: dso.TypeFuture, short: "A shared write-once value",
		methods: "set V, get, isDone",
		example: "  blossom future -n result get"},
	{use: "rendezvous", typ: dso.TypeRendezvous, short: "A two-party exchange point",
		methods: "exchange V",
		example: "  blossom rendezvous -n de41a38e exchange 10.0.0.7:8080"},
	{use: "pipe", typ: dso.TypePipe, short: "A shared bounded FIFO queue",
		methods: "put V, offer V, take, poll, close, size, isClosed",
		ctor:    []dsoCtorFlag{{"capacity", "", "capacity if created", dso.DefaultPipeCapacity}},
		example: "  blossom pipe -n jobs put job-1\n  blossom pipe -n jobs take"},
}

// dsoEndpoints returns the endpoints from the flag, BLOSSOM_ENDPOINTS, or
// the default.
func dsoEndpoints(flag string) []string {
	if flag == "" {
		flag = os.Getenv("BLOSSOM_ENDPOINTS")
	}
	if flag == "" {
		flag = "localhost:7400"
	}
	var out []string
	for _, e := range strings.Split(flag, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// dsoClientFlags are the connection flags of every object command.
type dsoClientFlags struct {
	endpoints, token, tlsCA, tlsCert, tlsKey string
	timeout                                  time.Duration
}

// add defines the flags on cmd, for its subcommands too if persistent.
func (d *dsoClientFlags) add(cmd *cobra.Command, persistent bool) {
	f := cmd.Flags()
	if persistent {
		f = cmd.PersistentFlags()
	}
	f.StringVar(&d.endpoints, "endpoints", "", "comma-separated host:port of cluster nodes (default $BLOSSOM_ENDPOINTS or localhost:7400)")
	f.StringVar(&d.token, "token", "", "authentication token (default $BLOSSOM_TOKEN)")
	f.StringVar(&d.tlsCA, "tls-ca", "", "PEM CA certificate of the servers: connect with TLS (default $BLOSSOM_TLS_CA)")
	f.StringVar(&d.tlsCert, "tls-cert", "", "PEM client certificate, for servers that require one (mutual TLS) (default $BLOSSOM_TLS_CERT)")
	f.StringVar(&d.tlsKey, "tls-key", "", "PEM private key of --tls-cert (default $BLOSSOM_TLS_KEY)")
	f.DurationVar(&d.timeout, "timeout", 0, "give up after this long (0: no limit, but an unresponsive node is still given up after a few seconds)")
}

// context returns ctx bounded by --timeout.
func (d *dsoClientFlags) context(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.timeout > 0 {
		return context.WithTimeout(ctx, d.timeout)
	}
	return context.WithCancel(ctx)
}

// exportCredentials puts the credentials given by flags into this
// process's environment (client.EnvToken, ...), file names made absolute,
// so that the functions this process runs on the local or process back end
// (and a detached copy of it) present them too.
func (d *dsoClientFlags) exportCredentials() error {
	for _, f := range []struct {
		v, env string
		file   bool
	}{{d.token, client.EnvToken, false}, {d.tlsCA, client.EnvTLSCA, true}, {d.tlsCert, client.EnvTLSCert, true}, {d.tlsKey, client.EnvTLSKey, true}} {
		if f.v == "" {
			continue
		}
		v := f.v
		if f.file {
			abs, err := filepath.Abs(v)
			if err != nil {
				return &exitError{2, err}
			}
			v = abs
		}
		if err := os.Setenv(f.env, v); err != nil {
			return &exitError{2, err}
		}
	}
	return nil
}

func dsoDial(ctx context.Context, d *dsoClientFlags) (*client.Client, error) {
	o := client.Options{Endpoints: dsoEndpoints(d.endpoints), ConnsPerNode: 1, RetryFor: 2 * time.Second,
		Logger: slog.New(slog.DiscardHandler)}
	creds := client.Credentials{Token: d.token, TLSCA: d.tlsCA, TLSCert: d.tlsCert, TLSKey: d.tlsKey}.FromEnv()
	if err := creds.Apply(&o); err != nil {
		return nil, &exitError{2, err}
	}
	c, err := client.DialOptions(ctx, o)
	if err != nil {
		return nil, &exitError{3, err}
	}
	return c, nil
}

// parseArg reads a command-line argument as a DSO value: an integer, a
// float, true/false/null, JSON (object, array or quoted string), and
// otherwise the text itself.
func parseArg(s string) (any, error) {
	i, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		return i, nil
	}
	if errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("%s is out of range for int64 (%d to %d)", s, int64(math.MinInt64), int64(math.MaxInt64))
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "nN") {
		return f, nil
	}
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	if strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[") || strings.HasPrefix(s, `"`) {
		d := json.NewDecoder(strings.NewReader(s))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, fmt.Errorf("argument %q: %w", s, err)
		}
		return fromJSON(v), nil
	}
	return s, nil
}

func fromJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = fromJSON(x[i])
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = fromJSON(x[k])
		}
		return x
	}
	return v
}

// formatValue prints a reply: scalars as text, lists and maps as JSON,
// nothing for nil.
func formatValue(w io.Writer, v any) {
	switch x := v.(type) {
	case nil:
	case string:
		fmt.Fprintln(w, x)
	case []byte:
		w.Write(x)
		if len(x) > 0 && x[len(x)-1] != '\n' {
			fmt.Fprintln(w)
		}
	case int64, bool:
		fmt.Fprintln(w, x)
	case float64:
		fmt.Fprintln(w, strconv.FormatFloat(x, 'g', -1, 64))
	default:
		b, err := json.Marshal(toJSON(v))
		if err != nil {
			fmt.Fprintln(w, v)
			return
		}
		fmt.Fprintln(w, string(b))
	}
}

func toJSON(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = toJSON(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k := range x {
			out[k] = toJSON(x[k])
		}
		return out
	}
	return v
}

func newObjectCmd(spec dsoObjectSpec) *cobra.Command {
	var name, combiner string
	var inc int64
	var persistent bool
	var level string
	var df dsoClientFlags
	ctorVals := make([]int64, len(spec.ctor))
	cmd := &cobra.Command{
		Use:     spec.use + " -n NAME METHOD [ARGS...]",
		Aliases: spec.aliases,
		Short:   spec.short,
		Long: fmt.Sprintf(`Call a method of the shared %s named by -n. Methods: %s.
Arguments are integers, floats, true/false/null, JSON, or text. Endpoints
come from --endpoints or BLOSSOM_ENDPOINTS (default localhost:7400).`, spec.typ, spec.methods),
		Example: spec.example,
		// Flags are parsed in RunE, so that negative numbers are arguments
		// (list get -1) and not unknown flags.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, raw []string) error {
			if err := cmd.Flags().Parse(negativesAsArgs(cmd, raw)); err != nil {
				return &exitError{2, err}
			}
			if help, _ := cmd.Flags().GetBool("help"); help {
				return cmd.Help()
			}
			argv := cmd.Flags().Args()
			if len(argv) < 1 {
				return &exitError{2, fmt.Errorf("%s: a METHOD is required (%s)", spec.use, spec.methods)}
			}
			if name == "" {
				return &exitError{2, fmt.Errorf("%s: -n NAME is required", spec.use)}
			}
			method := argv[0]
			var args []any
			for i, s := range argv[1:] {
				if s == "-" && (spec.typ == dso.TypeBlob) {
					b, err := io.ReadAll(cmd.InOrStdin())
					if err != nil {
						return &exitError{1, err}
					}
					args = append(args, b)
					continue
				}
				if (method == "mergeAll") && strings.Contains(s, "=") && !strings.HasPrefix(s, "{") {
					m, _ := args0Map(&args)
					k, vs, _ := strings.Cut(s, "=")
					v, err := parseArg(vs)
					if err != nil {
						return &exitError{2, err}
					}
					m[k] = v
					continue
				}
				v, err := parseArg(s)
				if err != nil {
					return &exitError{2, fmt.Errorf("argument %d: %w", i+1, err)}
				}
				args = append(args, v)
			}
			if cmd.Flags().Changed("increment") {
				args = append([]any{inc}, args...)
			}
			if method == "merge" || method == "mergeAll" {
				args = append(args, combiner)
			}
			var ctor []any
			for _, f := range spec.ctor {
				if cmd.Flags().Changed(f.name) || f.def != 0 {
					for i := range spec.ctor {
						ctor = append(ctor, ctorVals[i])
					}
					break
				}
			}
			ctx, stop := dsoSignalContext(cmd)
			defer stop()
			ctx, cancel := df.context(ctx)
			defer cancel()
			c, err := dsoDial(ctx, &df)
			if err != nil {
				return err
			}
			defer c.Close()
			var caller dso.Caller = c
			if persistent {
				caller = c.Persistent()
			}
			if cmd.Flags().Changed("level") {
				l, err := degradable.ParseLevel(level)
				if err != nil {
					return &exitError{2, err}
				}
				caller = c.Persistent().At(l)
			}
			var v any
			if spec.typ == dso.TypeScalableCyclicBarrier {
				if method != "await" {
					return &exitError{2, fmt.Errorf("sbarrier has one method, await")}
				}
				v, err = dso.NewScalableCyclicBarrier(caller, name, int(ctorVals[0])).Await(ctx)
			} else {
				v, err = dso.NewHandle(caller, spec.typ, name, ctor...).Call(ctx, method, args...)
			}
			if err != nil {
				code := 1
				if errors.Is(err, client.ErrUnavailable) {
					code = 3
				}
				return &exitError{code, err}
			}
			formatValue(cmd.OutOrStdout(), v)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&name, "name", "n", "", "name (key) of the object")
	f.BoolVar(&persistent, "persistent", false, "the persistent object of that name, replicated by the cluster's protocol (servers started with --rf), not the ephemeral one")
	f.StringVar(&level, "level", "linearizable", "degradation level of the persistent object (implies --persistent), chosen at its first call and kept: linearizable, sequential (ordered updates, local reads) or weak (local updates merged in the background; only the updates that commute)")
	df.add(cmd, false)
	if spec.typ == dso.TypeCounter || spec.typ == dso.TypeAtomicLong || spec.typ == dso.TypeAtomicInt {
		f.Int64VarP(&inc, "increment", "i", 1, "amount, passed as the first argument")
	}
	if spec.typ == dso.TypeMap {
		f.StringVarP(&combiner, "combiner", "c", "sum", "combiner of merge and mergeAll: sum, max, min, replace")
	}
	for i, c := range spec.ctor {
		f.Int64VarP(&ctorVals[i], c.name, c.short, c.def, c.usage)
	}
	return cmd
}

// isNumber reports whether s is a number (negative numbers look like
// flags to the flag parser).
func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil || errors.Is(err, strconv.ErrRange)
}

// negativesAsArgs reorders argv as flags, then "--", then the positional
// arguments in their order, so that a negative number (-1, -2.5) that is
// not the value of a flag is taken as an argument.
func negativesAsArgs(cmd *cobra.Command, argv []string) []string {
	var flags, pos []string
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			pos = append(pos, argv[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" || isNumber(a) {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		if strings.Contains(a, "=") {
			continue
		}
		needsValue := false
		if name, ok := strings.CutPrefix(a, "--"); ok {
			if f := cmd.Flags().Lookup(name); f != nil {
				needsValue = f.NoOptDefVal == ""
			}
		} else if len(a) == 2 {
			if f := cmd.Flags().ShorthandLookup(a[1:]); f != nil {
				needsValue = f.NoOptDefVal == ""
			}
		}
		if needsValue && i+1 < len(argv) {
			i++
			flags = append(flags, argv[i])
		}
	}
	return append(append(flags, "--"), pos...)
}

// args0Map returns the map being built from K=V arguments, appending it.
func args0Map(args *[]any) (map[string]any, bool) {
	for _, a := range *args {
		if m, ok := a.(map[string]any); ok {
			return m, true
		}
	}
	m := map[string]any{}
	*args = append(*args, m)
	return m, false
}

// newObjectsCmd lists and deletes objects.
func newObjectsCmd() *cobra.Command {
	var df dsoClientFlags
	cmd := &cobra.Command{
		Use:   "objects",
		Short: "List or delete shared objects",
		Example: `  blossom objects ls
  blossom objects rm Counter average`,
	}
	df.add(cmd, true)
	cmd.AddCommand(&cobra.Command{
		Use:   "ls [TYPE-PREFIX]",
		Short: "List the objects of the cluster (type, key, kind, replicas)",
		Long: `List the objects of the cluster, one per line: type, key, kind
(ephemeral: in the memory of one node; persistent: replicated by the
cluster's protocol; persistent:sequential and persistent:weak: persistent
objects of those degradation levels) and the nodes holding it (a persistent
object's replica group, its owner first).`,
		Example: "  blossom objects ls\n  blossom objects ls Counter",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx, stop := dsoSignalContext(cmd)
			defer stop()
			ctx, cancel := df.context(ctx)
			defer cancel()
			c, err := dsoDial(ctx, &df)
			if err != nil {
				return err
			}
			defer c.Close()
			prefix := ""
			if len(argv) > 0 {
				prefix = argv[0]
			}
			objs, err := c.ListAll(ctx, prefix)
			var lerr *client.ListError
			if err != nil && !errors.As(err, &lerr) {
				return &exitError{1, err}
			}
			for _, o := range objs {
				kind := "ephemeral"
				switch {
				case o.Persistent && o.Level > degradable.Linearizable:
					kind = "persistent:" + o.Level.String()
				case o.Persistent:
					kind = "persistent"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s\t%s\n", o.Ref.Type, o.Ref.Key, kind, strings.Join(o.Replicas, ","))
			}
			if lerr != nil {
				for i, n := range lerr.Failed {
					fmt.Fprintf(cmd.ErrOrStderr(), "blossom: node %s did not answer; its objects are not listed: %v\n", n, lerr.Errs[i])
				}
				return &exitError{3, fmt.Errorf("%d of %d nodes did not answer", len(lerr.Failed), len(c.Members()))}
			}
			return nil
		},
	})
	var (
		rmPersistent bool
		rmLevel      string
	)
	rm := &cobra.Command{
		Use:     "rm TYPE NAME",
		Short:   "Delete an object (calls waiting on it fail)",
		Example: "  blossom objects rm CyclicBarrier b\n  blossom objects rm --persistent AtomicLong hits\n  blossom objects rm --level sequential Counter c",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx, stop := dsoSignalContext(cmd)
			defer stop()
			ctx, cancel := df.context(ctx)
			defer cancel()
			c, err := dsoDial(ctx, &df)
			if err != nil {
				return err
			}
			defer c.Close()
			ref := dso.Ref{Type: argv[0], Key: argv[1]}
			var ok bool
			switch {
			case cmd.Flags().Changed("level"):
				l, perr := degradable.ParseLevel(rmLevel)
				if perr != nil {
					return &exitError{2, perr}
				}
				ok, err = c.Persistent().At(l).Delete(ctx, ref)
			case rmPersistent:
				ok, err = c.Persistent().Delete(ctx, ref)
			default:
				ok, err = c.Delete(ctx, ref)
			}
			if err != nil {
				return &exitError{1, err}
			}
			if !ok {
				return &exitError{1, fmt.Errorf("no object %s/%s", argv[0], argv[1])}
			}
			return nil
		},
	}
	rm.Flags().BoolVar(&rmPersistent, "persistent", false, "delete the persistent object of that name")
	rm.Flags().StringVar(&rmLevel, "level", "linearizable", "degradation level of the persistent object (implies --persistent; as objects ls shows it): linearizable or sequential (weak objects cannot be deleted)")
	cmd.AddCommand(rm)
	return cmd
}
