// Command eventsourcing-grpc serves event-sourced applications over gRPC.
//
//	eventsourcing-grpc server [APPLICATION_TOPIC]     serve one application (APPLICATION_TOPIC wins)
//	eventsourcing-grpc runner [SYSTEM_TOPIC]          run a whole system, one subprocess per application
//	eventsourcing-grpc call ADDRESS METHOD [JSON...]  call a command or query, print the JSON result
//	eventsourcing-grpc notifications ADDRESS [-start N] [-limit N] [-topic T]
//	eventsourcing-grpc ssl [-dir ssl] [HOST...]       issue a root CA and SAN certificates for mutual TLS
//	eventsourcing-grpc status ADDRESS                 one line per upstream of the served application or projection
//	eventsourcing-grpc rebuild ADDRESS                empty a served projection's view and catch it up again
//
// Settings come from the environment: <APP>_GRPC_SERVER_ADDRESS,
// SYSTEM_TOPIC, GRPC_SSL_PRIVATE_KEY_PATH,
// GRPC_SSL_CERTIFICATE_PATH, GRPC_SSL_ROOT_CERTIFICATE_PATH, GRPC_INSECURE,
// and each application's persistence settings (PERSISTENCE_MODULE, ...).
// SIGINT and SIGTERM stop servers and runners gracefully.
//
// server, runner and call set up OpenTelemetry from the standard OTEL_*
// variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, ...) before
// building anything, and server and runner serve /metrics, /healthz and
// /readyz on METRICS_ADDRESS when it is set (package operate; see
// docs/operating.md).
//
// The binary links the example system (orders.System, orders.Orders,
// orders.Reservations, orders.Payments, and the orders.OrdersSummary
// projection) and every persistence module: memory, SQLite, PostgreSQL and
// EventStoreDB.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/eventsourcing-go/eventsourcing"
	_ "github.com/eventsourcing-go/eventsourcing/esdb"
	_ "github.com/eventsourcing-go/eventsourcing/example/orders"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/operate"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	_ "github.com/eventsourcing-go/eventsourcing/recorder/postgres"
	_ "github.com/eventsourcing-go/eventsourcing/recorder/sqlite"
)

const usage = `usage:
  eventsourcing-grpc server [APPLICATION_TOPIC]
  eventsourcing-grpc runner [-in-process] [-demo=false] [SYSTEM_TOPIC]
  eventsourcing-grpc call [-timeout 5s] ADDRESS METHOD [JSON-ARG...]
  eventsourcing-grpc notifications ADDRESS [-start N] [-limit N] [-topic T]...
  eventsourcing-grpc ssl [-dir ssl] [HOST...]
  eventsourcing-grpc status [-timeout 5s] ADDRESS
  eventsourcing-grpc rebuild [-timeout 30s] ADDRESS
  eventsourcing-grpc health [-timeout 3s] [ADDRESS]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run runs one subcommand and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "server":
		err = serverCmd(ctx, args[1:], stdout)
	case "runner":
		err = runnerCmd(ctx, args[1:], stdout)
	case "call":
		err = callCmd(ctx, args[1:], stdout)
	case "notifications":
		err = notificationsCmd(ctx, args[1:], stdout)
	case "ssl":
		err = sslCmd(args[1:], stdout)
	case "status":
		err = statusCmd(ctx, args[1:], stdout)
	case "rebuild":
		err = rebuildCmd(ctx, args[1:], stdout)
	case "health":
		err = healthCmd(ctx, args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown subcommand %q\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		// -h: the subcommand printed its help.
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "eventsourcing-grpc:", err)
		return 1
	}
	return 0
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// usageOf returns the usage line of a subcommand.
func usageOf(name string) string {
	for line := range strings.Lines(usage) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "eventsourcing-grpc "+name); ok && (rest == "" || rest[0] == ' ') {
			return "usage: " + strings.TrimSpace(line)
		}
	}
	return "usage: eventsourcing-grpc " + name
}

// newFlagSet returns a subcommand's flags; -h prints its usage line and
// flags to stdout, and the subcommand then exits 0.
func newFlagSet(name string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), usageOf(name))
		fs.PrintDefaults()
	}
	return fs
}

// serverCmd serves one application until a signal, or until the server
// fails (a follower that gave up included), which exits 1 so that a
// supervisor (the runner, Kubernetes) sees it.
func serverCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		apps, _ := grpcapp.Topics()
		fmt.Fprintf(stdout, "%s\n\nServes one application or projection over gRPC (APPLICATION_TOPIC wins over the\nargument; with SYSTEM_TOPIC, as a member of that system). Registered: %s.\n", usageOf("server"), strings.Join(apps, ", "))
		return flag.ErrHelp
	}
	topic := os.Getenv(grpcapp.EnvApplicationTop)
	if topic == "" && len(args) > 0 {
		topic = args[0]
	}
	if topic == "" {
		apps, _ := grpcapp.Topics()
		return fmt.Errorf("no application: set %s or give a topic (registered: %s)", grpcapp.EnvApplicationTop, strings.Join(apps, ", "))
	}
	// Telemetry first: everything built below uses the global providers.
	member := grpcapp.LookupMember(topic)
	o, err := startTelemetry(ctx, member, member)
	if err != nil {
		return err
	}
	defer o.close()
	var s *grpcapp.Server
	if st := os.Getenv(grpcapp.EnvSystemTopic); st != "" {
		// A member of a system: an application, with its followers, or a
		// projection.
		sys, _, err := grpcapp.LookupSystem(st)
		if err != nil {
			return err
		}
		if s, err = grpcapp.NewSystemServer(ctx, sys, member, nil); err != nil {
			return err
		}
	} else {
		reg, err := grpcapp.LookupApp(topic)
		if err != nil {
			return err
		}
		app, err := reg.App.Build(ctx, nil)
		if err != nil {
			return err
		}
		defer app.Close()
		if s, err = grpcapp.NewServer(app); err != nil {
			return err
		}
	}
	if err := s.Start(ctx); err != nil {
		return errors.Join(err, s.Stop(context.Background()))
	}
	if err := o.serve(ctx, s); err != nil {
		return errors.Join(err, s.Stop(context.Background()))
	}
	select {
	case <-ctx.Done():
	case <-s.Errored():
	}
	// Not ready first, then a bounded drain: in-flight calls and the event
	// being processed finish, then the process exits.
	_ = o.stopEndpoints()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Stop(stopCtx)
}

// statusCmd prints one line per upstream of the served member.
func statusCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("status", stdout)
	timeout := fs.Duration("timeout", grpcapp.DefaultCallTimeout, "deadline of the call")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: status ADDRESS")
	}
	c, err := connect(ctx, fs.Arg(0), *timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	head := "none"
	if st.HasHead {
		head = fmt.Sprint(st.Head)
	}
	fmt.Fprintf(stdout, "%s %s head %s\n", st.Kind, st.Name, head)
	if len(st.Upstreams) == 0 {
		fmt.Fprintln(stdout, "  no upstream: it follows nothing")
	}
	for _, u := range st.Upstreams {
		fmt.Fprintf(stdout, "  %s\n", u)
	}
	return nil
}

// rebuildCmd asks a projection's server to rebuild its view.
func rebuildCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("rebuild", stdout)
	timeout := fs.Duration("timeout", 30*time.Second, "deadline of the call")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: rebuild ADDRESS")
	}
	c, err := connect(ctx, fs.Arg(0), *timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Rebuild(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: view emptied; catching up again (follow with: status %s)\n", c.Name(), fs.Arg(0))
	return nil
}

// runnerCmd runs a system until a signal or its first error.
func runnerCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("runner", stdout)
	inProcess := fs.Bool("in-process", false, "run every application in this process instead of one subprocess each")
	demo := fs.Bool("demo", true, "run the system's registered demonstration once started (orders.System: create an order and watch it get paid)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	topic := os.Getenv(grpcapp.EnvSystemTopic)
	if topic == "" {
		topic = fs.Arg(0)
	}
	if topic == "" {
		_, systems := grpcapp.Topics()
		return fmt.Errorf("no system: set %s or give a topic (registered: %s)", grpcapp.EnvSystemTopic, strings.Join(systems, ", "))
	}
	sys, canonical, err := grpcapp.LookupSystem(topic)
	if err != nil {
		return err
	}
	o, err := startTelemetry(ctx, "", canonical)
	if err != nil {
		return err
	}
	defer o.close()
	opts := []grpcapp.RunnerOption{grpcapp.WithSystemTopic(canonical), grpcapp.WithFirstPort(50051)}
	if !*inProcess {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		opts = append(opts, grpcapp.WithSubprocesses(self))
	}
	// The runner serves the operations endpoints of the whole system;
	// each member names its own service (<APP>_METRICS_ADDRESS and
	// <APP>_OTEL_SERVICE_NAME still apply to one member).
	r := grpcapp.NewRunner(sys, map[string]string{operate.EnvMetricsAddress: "", operate.EnvServiceName: ""}, opts...)
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.Start(startCtx); err != nil {
		if ctx.Err() != nil {
			// Interrupted (Ctrl-C, SIGTERM) while starting: a stop that was
			// asked for, not a failure; Start has stopped what it started.
			fmt.Fprintln(stdout, "Stopped while starting.")
			return nil
		}
		return err
	}
	if err := o.serve(ctx, r); err != nil {
		return errors.Join(err, r.Stop())
	}
	mode := "one subprocess per application"
	if *inProcess {
		mode = "in this process"
	}
	fmt.Fprintf(stdout, "Running %s (%s):\n", canonical, mode)
	addrs := r.Addresses()
	first := ""
	for _, a := range sys.Apps() {
		fmt.Fprintf(stdout, "  %-14s %s\n", a.Name(), addrs[a.Name()])
		if first == "" {
			first = addrs[a.Name()]
		}
	}
	for _, p := range sys.Projections() {
		fmt.Fprintf(stdout, "  %-14s %s (projection of %s)\n", p.Name(), addrs[p.Name()], p.Upstream())
	}
	if *demo {
		if d, ok := grpcapp.LookupDemo(canonical); ok {
			if err := d(ctx, r, stdout); err != nil {
				return errors.Join(err, r.Stop())
			}
		}
	}
	fmt.Fprintf(stdout, "\nCall it from another terminal, for example:\n  go run ./cmd/eventsourcing-grpc call %s Describe\n  go run ./cmd/eventsourcing-grpc notifications %s -limit 10\n  go run ./cmd/eventsourcing-grpc status %s\nPress Ctrl-C to stop.\n", first, first, first)
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "Stopping...")
	case <-r.Errored():
	}
	_ = o.stopEndpoints()
	return r.Stop()
}

// callCmd calls a method and prints its result as plain JSON (tagged UUIDs,
// decimals and times printed as strings).
func callCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("call", stdout)
	timeout := fs.Duration("timeout", grpcapp.DefaultCallTimeout, "deadline of the call")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return errors.New("usage: call ADDRESS METHOD [JSON-ARG...] (METHOD Describe lists the methods)")
	}
	addr, method := fs.Arg(0), fs.Arg(1)
	// The call is the root of its trace when traces are exported.
	o, err := startTelemetry(ctx, "", "eventsourcing-grpc")
	if err != nil {
		return err
	}
	defer o.close()
	c, err := connect(ctx, addr, *timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	if method == "Describe" {
		d, err := c.Describe(ctx)
		if err != nil {
			return err
		}
		return printJSON(stdout, d)
	}
	var callArgs []any
	for i, a := range fs.Args()[2:] {
		var v json.RawMessage
		if err := json.Unmarshal([]byte(a), &v); err != nil {
			// A bare word is taken as a string, so that ids need no quoting.
			v, _ = json.Marshal(a)
			_ = i
		}
		callArgs = append(callArgs, v)
	}
	data, err := c.App().Call(ctx, method, callArgs...)
	if err != nil {
		return err
	}
	var v any
	if err := eventsourcing.NewTypes().Decode(data, &v); err != nil {
		// Values of application-registered transcodings: print as sent.
		_, err = fmt.Fprintln(stdout, string(data))
		return err
	}
	return printJSON(stdout, v)
}

// notificationsCmd prints one JSON object per notification.
func notificationsCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("notifications", stdout)
	start := fs.Int64("start", 0, "first notification id (inclusive); 0 (the default) is the start of the log on every backend (EventStoreDB ids are commit positions)")
	limit := fs.Int("limit", 10, "at most this many, up to the server's page limit (1,000 by default); 0 is the application's section size")
	var topics multiFlag
	fs.Var(&topics, "topic", "only this topic (repeatable)")
	// The address may come before the flags, as in the reference's usage.
	var addr string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		addr, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if addr == "" {
		addr = fs.Arg(0)
	}
	if addr == "" {
		return errors.New("usage: notifications ADDRESS [-start N] [-limit N] [-topic T]")
	}
	c, err := connect(ctx, addr, grpcapp.DefaultCallTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	q := recorder.NotificationQuery{Limit: *limit, Topics: topics}
	if *start > 0 {
		q.Start = start
	}
	ns, err := c.Log().Select(ctx, q)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for _, n := range ns {
		if err := enc.Encode(struct {
			ID                int64  `json:"id"`
			OriginatorID      string `json:"originator_id"`
			OriginatorVersion int64  `json:"originator_version"`
			Topic             string `json:"topic"`
		}{n.ID, n.OriginatorID, n.OriginatorVersion, n.Topic}); err != nil {
			return err
		}
	}
	return nil
}

// sslCmd issues the certificates of make ssl.
func sslCmd(args []string, stdout io.Writer) error {
	fs := newFlagSet("ssl", stdout)
	dir := fs.String("dir", "ssl", "output directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	hosts := fs.Args()
	if len(hosts) == 0 {
		hosts = []string{"orders", "reservations", "payments"}
		if h, err := os.Hostname(); err == nil && h != "" && !slices.Contains(hosts, h) {
			hosts = append([]string{h}, hosts...)
		}
	}
	if err := grpcapp.GenerateCertificates(*dir, hosts, grpcapp.CertificateOptions{}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s/root/root.crt and %s/<host>/{<host>.key,<host>.crt,root.crt} for %s\n", *dir, *dir, strings.Join(hosts, ", "))
	return nil
}

func connect(ctx context.Context, addr string, timeout time.Duration) (*grpcapp.Client, error) {
	cfg, err := grpcapp.ConfigFromEnv(recorder.NewEnv("", nil))
	if err != nil {
		return nil, err
	}
	return grpcapp.Connect(ctx, addr, grpcapp.WithTLS(cfg.TLS), grpcapp.WithCallTimeout(timeout), grpcapp.WithMaxAttempts(3))
}

func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
