// Package cli is the command line of a program that serves event-sourced
// applications over gRPC: a program names what it serves in a
// grpcapp.Registry and hands it to Main.
//
//	func main() {
//		reg := grpcapp.NewRegistry()
//		reg.System("orders.System", orders.System)
//		reg.App("orders.Orders", orders.OrdersApp())
//		cli.Main(reg)
//	}
//
// The subcommands (PROGRAM is the program's name):
//
//	PROGRAM server [APPLICATION_TOPIC]     serve one application or projection (APPLICATION_TOPIC wins)
//	PROGRAM runner [SYSTEM_TOPIC]          run a whole system, one subprocess of PROGRAM per member
//	PROGRAM call ADDRESS METHOD [JSON...]  call a command or query, print the JSON result
//	PROGRAM notifications ADDRESS [-start N] [-limit N] [-topic T]
//	PROGRAM ssl [-dir ssl] [HOST...]       issue a root CA and SAN certificates for mutual TLS
//	PROGRAM status ADDRESS                 one line per upstream of the served application or projection
//	PROGRAM rebuild ADDRESS                empty a served projection's view and catch it up again
//	PROGRAM health [ADDRESS]               exit 0 when the server answers SERVING (container health checks)
//
// Settings come from the environment: <APP>_GRPC_SERVER_ADDRESS,
// APPLICATION_TOPIC, SYSTEM_TOPIC, GRPC_SSL_PRIVATE_KEY_PATH,
// GRPC_SSL_CERTIFICATE_PATH, GRPC_SSL_ROOT_CERTIFICATE_PATH, GRPC_INSECURE,
// and each application's persistence settings (PERSISTENCE_MODULE, ...).
// The package links every persistence module (memory, SQLite, PostgreSQL
// and EventStoreDB), so that PERSISTENCE_MODULE chooses among them in any
// program built on it. SIGINT and SIGTERM stop servers and runners
// gracefully.
//
// server, runner and call set up OpenTelemetry from the standard OTEL_*
// variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, ...) before
// building anything, and server and runner serve /metrics, /healthz and
// /readyz on METRICS_ADDRESS when it is set (package operate; see
// docs/operating.md).
//
// example/cmd/eventsourcing-grpc is such a program, for the orders system
// of example/orders.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	_ "github.com/eventsourcing-go/eventsourcing/esdb" // PERSISTENCE_MODULE=esdb
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/operate"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	_ "github.com/eventsourcing-go/eventsourcing/recorder/postgres" // PERSISTENCE_MODULE=postgres
	_ "github.com/eventsourcing-go/eventsourcing/recorder/sqlite"   // PERSISTENCE_MODULE=sqlite
)

const usage = `usage:
  %[1]s server [APPLICATION_TOPIC]
  %[1]s runner [-in-process] [-demo=false] [SYSTEM_TOPIC]
  %[1]s call [-timeout 5s] ADDRESS METHOD [JSON-ARG...]
  %[1]s notifications ADDRESS [-start N] [-limit N] [-topic T]...
  %[1]s ssl [-dir ssl] [HOST...]
  %[1]s status [-timeout 5s] ADDRESS
  %[1]s rebuild [-timeout 30s] ADDRESS
  %[1]s health [-timeout 3s] [ADDRESS]
`

// Main runs the subcommand of os.Args with the topics of reg, stops it
// gracefully on SIGINT or SIGTERM, and exits with its status (see Run).
func Main(reg *grpcapp.Registry) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, reg, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Run runs the subcommand of args (args[0] is the program, as in os.Args)
// with the topics of reg until it ends or ctx is done, and returns the exit
// status: 0, 1 when the subcommand failed or reg holds a registration
// error, 2 for a usage error. It logs to stderr (slog's default logger). A
// nil reg registers nothing: the client subcommands (call, notifications,
// status, rebuild, health ADDRESS, ssl HOST...) still work. The runner
// starts its subprocesses from os.Executable, so a program that serves a
// system calls Run from its main.
func Run(ctx context.Context, reg *grpcapp.Registry, args []string, stdout, stderr io.Writer) int {
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	c := &command{reg: reg, prog: "eventsourcing-grpc", call: "eventsourcing-grpc", stdout: stdout}
	if len(args) > 0 {
		c.prog, c.call = filepath.Base(args[0]), args[0]
		if filepath.IsAbs(c.call) {
			// A temporary build (go run), or a path the user knows
			// better by its name.
			c.call = c.prog
		}
		args = args[1:]
	}
	if c.reg == nil {
		c.reg = grpcapp.NewRegistry()
	}
	if err := c.reg.Err(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", c.prog, err)
		return 1
	}
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, c.prog)
		return 2
	}
	var err error
	switch args[0] {
	case "server":
		err = c.server(ctx, args[1:])
	case "runner":
		err = c.runner(ctx, args[1:])
	case "call":
		err = c.callCmd(ctx, args[1:])
	case "notifications":
		err = c.notifications(ctx, args[1:])
	case "ssl":
		err = c.ssl(args[1:])
	case "status":
		err = c.status(ctx, args[1:])
	case "rebuild":
		err = c.rebuild(ctx, args[1:])
	case "health":
		err = c.health(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Fprintf(c.stdout, usage, c.prog)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown subcommand %q\n"+usage, args[0], c.prog)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		// -h: the subcommand printed its help.
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", c.prog, err)
		return 1
	}
	return 0
}

// command is one run of a subcommand.
type command struct {
	reg    *grpcapp.Registry
	prog   string // the program's name, in usage lines
	call   string // how the runner's hints call the program again
	stdout io.Writer
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// usageOf returns the usage line of a subcommand.
func (c *command) usageOf(name string) string {
	for line := range strings.Lines(fmt.Sprintf(usage, c.prog)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), c.prog+" "+name); ok && (rest == "" || rest[0] == ' ') {
			return "usage: " + strings.TrimSpace(line)
		}
	}
	return "usage: " + c.prog + " " + name
}

// newFlagSet returns a subcommand's flags; -h prints its usage line and
// flags to stdout, and the subcommand then exits 0.
func (c *command) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stdout)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), c.usageOf(name))
		fs.PrintDefaults()
	}
	return fs
}

// server serves one application until a signal, or until the server
// fails (a follower that gave up included), which exits 1 so that a
// supervisor (the runner, Kubernetes) sees it.
func (c *command) server(ctx context.Context, args []string) error {
	if len(args) > 0 && isHelp(args[0]) {
		apps, _ := c.reg.Topics()
		fmt.Fprintf(c.stdout, "%s\n\nServes one application or projection over gRPC (APPLICATION_TOPIC wins over the\nargument; with SYSTEM_TOPIC, as a member of that system). Registered: %s.\n", c.usageOf("server"), strings.Join(apps, ", "))
		return flag.ErrHelp
	}
	topic := os.Getenv(grpcapp.EnvApplicationTop)
	if topic == "" && len(args) > 0 {
		topic = args[0]
	}
	if topic == "" {
		apps, _ := c.reg.Topics()
		return fmt.Errorf("no application: set %s or give a topic (registered: %s)", grpcapp.EnvApplicationTop, strings.Join(apps, ", "))
	}
	// Telemetry first: everything built below uses the global providers.
	member := c.reg.LookupMember(topic)
	o, err := startTelemetry(ctx, member, member)
	if err != nil {
		return err
	}
	defer o.close()
	var s *grpcapp.Server
	if st := os.Getenv(grpcapp.EnvSystemTopic); st != "" {
		// A member of a system: an application, with its followers, or a
		// projection.
		sys, _, err := c.reg.LookupSystem(st)
		if err != nil {
			return err
		}
		if s, err = grpcapp.NewSystemServer(ctx, sys, member, nil); err != nil {
			return err
		}
	} else {
		def, err := c.reg.LookupApp(topic)
		if err != nil {
			return err
		}
		app, err := def.Build(ctx, nil)
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

// status prints one line per upstream of the served member.
func (c *command) status(ctx context.Context, args []string) error {
	fs := c.newFlagSet("status")
	timeout := fs.Duration("timeout", grpcapp.DefaultCallTimeout, "deadline of the call")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: status ADDRESS")
	}
	client, err := connect(ctx, fs.Arg(0), *timeout)
	if err != nil {
		return err
	}
	defer client.Close()
	st, err := client.Status(ctx)
	if err != nil {
		return err
	}
	head := "none"
	if st.HasHead {
		head = fmt.Sprint(st.Head)
	}
	fmt.Fprintf(c.stdout, "%s %s head %s\n", st.Kind, st.Name, head)
	if len(st.Upstreams) == 0 {
		fmt.Fprintln(c.stdout, "  no upstream: it follows nothing")
	}
	for _, u := range st.Upstreams {
		fmt.Fprintf(c.stdout, "  %s\n", u)
	}
	return nil
}

// rebuild asks a projection's server to rebuild its view.
func (c *command) rebuild(ctx context.Context, args []string) error {
	fs := c.newFlagSet("rebuild")
	timeout := fs.Duration("timeout", 30*time.Second, "deadline of the call")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: rebuild ADDRESS")
	}
	client, err := connect(ctx, fs.Arg(0), *timeout)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.Rebuild(ctx); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s: view emptied; catching up again (follow with: status %s)\n", client.Name(), fs.Arg(0))
	return nil
}

// runner runs a system until a signal or its first error.
func (c *command) runner(ctx context.Context, args []string) error {
	fs := c.newFlagSet("runner")
	inProcess := fs.Bool("in-process", false, "run every application in this process instead of one subprocess each")
	demo := fs.Bool("demo", true, "run the system's registered demonstration, if any, once started (orders.System's creates an order and watches it get paid)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	topic := os.Getenv(grpcapp.EnvSystemTopic)
	if topic == "" {
		topic = fs.Arg(0)
	}
	if topic == "" {
		_, systems := c.reg.Topics()
		return fmt.Errorf("no system: set %s or give a topic (registered: %s)", grpcapp.EnvSystemTopic, strings.Join(systems, ", "))
	}
	sys, canonical, err := c.reg.LookupSystem(topic)
	if err != nil {
		return err
	}
	o, err := startTelemetry(ctx, "", canonical)
	if err != nil {
		return err
	}
	defer o.close()
	opts := []grpcapp.RunnerOption{grpcapp.WithSystemTopic(canonical), grpcapp.WithRegistry(c.reg), grpcapp.WithFirstPort(50051)}
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
			fmt.Fprintln(c.stdout, "Stopped while starting.")
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
	fmt.Fprintf(c.stdout, "Running %s (%s):\n", canonical, mode)
	addrs := r.Addresses()
	first := ""
	for _, a := range sys.Apps() {
		fmt.Fprintf(c.stdout, "  %-14s %s\n", a.Name(), addrs[a.Name()])
		if first == "" {
			first = addrs[a.Name()]
		}
	}
	for _, p := range sys.Projections() {
		fmt.Fprintf(c.stdout, "  %-14s %s (projection of %s)\n", p.Name(), addrs[p.Name()], p.Upstream())
	}
	if *demo {
		if d, ok := c.reg.LookupDemo(canonical); ok {
			if err := d(ctx, r, c.stdout); err != nil {
				return errors.Join(err, r.Stop())
			}
		}
	}
	fmt.Fprintf(c.stdout, "\nCall it from another terminal, for example:\n  %[1]s call %[2]s Describe\n  %[1]s notifications %[2]s -limit 10\n  %[1]s status %[2]s\nPress Ctrl-C to stop.\n", c.call, first)
	select {
	case <-ctx.Done():
		fmt.Fprintln(c.stdout, "Stopping...")
	case <-r.Errored():
	}
	_ = o.stopEndpoints()
	return r.Stop()
}

// callCmd calls a method and prints its result as plain JSON (tagged UUIDs,
// decimals and times printed as strings).
func (c *command) callCmd(ctx context.Context, args []string) error {
	fs := c.newFlagSet("call")
	timeout := fs.Duration("timeout", grpcapp.DefaultCallTimeout, "deadline of the call")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return errors.New("usage: call ADDRESS METHOD [JSON-ARG...] (METHOD Describe lists the methods)")
	}
	addr, method := fs.Arg(0), fs.Arg(1)
	// The call is the root of its trace when traces are exported.
	o, err := startTelemetry(ctx, "", c.prog)
	if err != nil {
		return err
	}
	defer o.close()
	client, err := connect(ctx, addr, *timeout)
	if err != nil {
		return err
	}
	defer client.Close()
	if method == "Describe" {
		d, err := client.Describe(ctx)
		if err != nil {
			return err
		}
		return printJSON(c.stdout, d)
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
	data, err := client.App().Call(ctx, method, callArgs...)
	if err != nil {
		return err
	}
	var v any
	if err := eventsourcing.NewTypes().Decode(data, &v); err != nil {
		// Values of application-registered transcodings: print as sent.
		_, err = fmt.Fprintln(c.stdout, string(data))
		return err
	}
	return printJSON(c.stdout, v)
}

// notifications prints one JSON object per notification.
func (c *command) notifications(ctx context.Context, args []string) error {
	fs := c.newFlagSet("notifications")
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
	client, err := connect(ctx, addr, grpcapp.DefaultCallTimeout)
	if err != nil {
		return err
	}
	defer client.Close()
	q := recorder.NotificationQuery{Limit: *limit, Topics: topics}
	if *start > 0 {
		q.After, q.Inclusive = recorder.After(*start), true
	}
	ns, err := client.Log().Select(ctx, q)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(c.stdout)
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

// ssl issues the certificates of make ssl.
func (c *command) ssl(args []string) error {
	fs := c.newFlagSet("ssl")
	dir := fs.String("dir", "ssl", "output directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	hosts := fs.Args()
	if len(hosts) == 0 {
		hosts = c.hosts()
		if h, err := os.Hostname(); err == nil && h != "" && !slices.Contains(hosts, h) {
			hosts = append([]string{h}, hosts...)
		}
		if len(hosts) == 0 {
			return errors.New("ssl: no host: give the hosts the certificates are for")
		}
	}
	if err := grpcapp.GenerateCertificates(*dir, hosts, grpcapp.CertificateOptions{}); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "wrote %s/root/root.crt and %s/<host>/{<host>.key,<host>.crt,root.crt} for %s\n", *dir, *dir, strings.Join(hosts, ", "))
	return nil
}

// hosts returns the lower-cased names of the members of every registered
// system, sorted: the host names the example's deployments give them.
func (c *command) hosts() []string {
	seen := map[string]bool{}
	_, systems := c.reg.Topics()
	for _, t := range systems {
		sys, _, err := c.reg.LookupSystem(t)
		if err != nil {
			continue
		}
		for _, a := range sys.Apps() {
			seen[strings.ToLower(a.Name())] = true
		}
		for _, p := range sys.Projections() {
			seen[strings.ToLower(p.Name())] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

func connect(ctx context.Context, addr string, timeout time.Duration) (*grpcapp.Client, error) {
	cfg, err := grpcapp.ConfigFromEnv(config.NewEnv("", nil))
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
