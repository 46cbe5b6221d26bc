package grpcapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/internal/lifecycle"
	"github.com/eventsourcing-go/eventsourcing/system"
)

// RunnerOption configures NewRunner.
type RunnerOption func(*runnerOptions)

type runnerOptions struct {
	command     []string // the console command, for subprocesses
	topic       string   // the system's topic, for subprocesses
	firstPort   int
	logger      *slog.Logger
	output      io.Writer
	stopTimeout time.Duration
	clientOpts  []ClientOption
	registry    *Registry // names subprocesses by their topics
}

// WithSubprocesses runs each application as a subprocess: command followed
// by "server <APPLICATION_TOPIC>" (command is typically os.Executable() of
// a command built on package grpcapp/cli, such as the example's
// eventsourcing-grpc). The subprocesses find the system by the topic of
// WithSystemTopic, in their own registry.
func WithSubprocesses(command ...string) RunnerOption {
	return func(o *runnerOptions) { o.command = slices.Clone(command) }
}

// WithRegistry names each subprocess by the topic its member is registered
// under in reg (APPLICATION_TOPIC), as a deployment names it; without it,
// or for a member reg does not know, by the member's name.
func WithRegistry(reg *Registry) RunnerOption { return func(o *runnerOptions) { o.registry = reg } }

// WithSystemTopic gives the topic the system is registered under; the
// runner passes it to subprocesses as SYSTEM_TOPIC.
func WithSystemTopic(topic string) RunnerOption { return func(o *runnerOptions) { o.topic = topic } }

// WithFirstPort makes the runner try ports from this one (50051 is the
// reference's) for applications whose address is not configured, taking the
// next free one each time; 0 (the default) takes any free port.
func WithFirstPort(port int) RunnerOption { return func(o *runnerOptions) { o.firstPort = port } }

// WithRunnerLogger sets the runner's logger.
func WithRunnerLogger(l *slog.Logger) RunnerOption { return func(o *runnerOptions) { o.logger = l } }

// WithSubprocessOutput sends the subprocesses' standard output and error to w
// (default: the runner's standard error).
func WithSubprocessOutput(w io.Writer) RunnerOption { return func(o *runnerOptions) { o.output = w } }

// WithRunnerClientOptions adds options to the runner's clients.
func WithRunnerClientOptions(opts ...ClientOption) RunnerOption {
	return func(o *runnerOptions) { o.clientOpts = append(o.clientOpts, opts...) }
}

// Runner runs every application of a system as a gRPC server, in this
// process or one subprocess each, with followers following their leaders
// over gRPC. It implements system.Runner; Get returns application proxies,
// which work in both modes.
type Runner struct {
	sys  *system.System
	env  map[string]string
	opts runnerOptions

	mu       sync.Mutex
	haltOnce sync.Once
	addrs    map[string]string
	servers  map[string]*Server
	procs    []*subprocess
	clients  map[string]*Client

	// lc is the runner's lifecycle: start once, the first error, Stop.
	lc lifecycle.Lifecycle
}

var _ system.Runner = (*Runner)(nil)

type subprocess struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// NewRunner returns a runner for sys. env overrides the process
// environment, for the runner and every application it starts.
func NewRunner(sys *system.System, env map[string]string, opts ...RunnerOption) *Runner {
	o := runnerOptions{logger: slog.Default(), output: os.Stderr, stopTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	e := make(map[string]string, len(env))
	for k, v := range env {
		e[k] = v
	}
	return &Runner{sys: sys, env: e, opts: o, servers: map[string]*Server{}, clients: map[string]*Client{}}
}

// Addresses returns the address of each application (configured or assigned).
func (r *Runner) Addresses() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.addrs))
	for k, v := range r.addrs {
		out[k] = v
	}
	return out
}

// Start assigns addresses to the applications that have none configured
// (localhost:<free port>), starts every server, and returns when every server
// answers. ctx bounds the start-up. A second call fails with
// system.ErrRunnerAlreadyStarted; a failed start stops what it started.
func (r *Runner) Start(ctx context.Context) error {
	if _, err := r.lc.Begin(ctx); err != nil {
		if errors.Is(err, lifecycle.ErrStopped) {
			return system.ErrRunnerStopped
		}
		return system.ErrRunnerAlreadyStarted
	}
	if err := r.start(ctx); err != nil {
		return errors.Join(err, r.Stop())
	}
	if len(r.opts.command) > 0 {
		// The members' followers run elsewhere: publish their progress
		// here (runner_telemetry.go).
		unobserve := r.observeRemote()
		r.lc.OnStop(func(context.Context) error { unobserve(); return nil })
	}
	return nil
}

func (r *Runner) start(ctx context.Context) error {
	if err := r.assignAddresses(); err != nil {
		return err
	}
	// Followers first, then leaders only, then singles, as the reference
	// does; the order only matters for how soon streams connect.
	var order []string
	order = append(order, r.sys.Followers()...)
	order = append(order, r.sys.LeadersOnly()...)
	order = append(order, r.sys.Singles()...)
	for _, p := range r.sys.Projections() {
		order = append(order, p.Name())
	}
	if len(r.opts.command) > 0 {
		if r.opts.topic == "" {
			return fmt.Errorf("grpcapp: runner: %w: subprocesses need the system's topic (WithSystemTopic)", config.ErrConfiguration)
		}
		for _, name := range order {
			if err := r.spawn(name); err != nil {
				return err
			}
		}
	} else {
		for _, name := range order {
			s, err := NewSystemServer(ctx, r.sys, name, r.env, WithAddress(r.addrs[name]), WithServerLogger(r.opts.logger))
			if err != nil {
				return err
			}
			r.mu.Lock()
			r.servers[name] = s
			r.mu.Unlock()
			if err := s.Start(ctx); err != nil {
				return err
			}
			go func() {
				select {
				case <-s.Errored():
					r.setErr(s.Err())
				case <-s.Done():
				}
			}()
		}
	}
	// Ready means answering: connect a client to every server, giving up
	// as soon as a subprocess dies.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.lc.Errored():
			cancel()
		case <-cctx.Done():
		}
	}()
	for _, name := range order {
		c, err := r.connect(cctx, name)
		if err != nil {
			if rerr := r.Err(); rerr != nil {
				return rerr
			}
			return fmt.Errorf("grpcapp: runner: %s did not become ready: %w", name, err)
		}
		r.mu.Lock()
		r.clients[name] = c
		r.mu.Unlock()
	}
	return nil
}

func (r *Runner) connect(ctx context.Context, name string) (*Client, error) {
	cfg, err := ConfigFromEnv(config.NewEnv(name, r.env))
	if err != nil {
		return nil, err
	}
	opts := []ClientOption{WithTLS(cfg.TLS), WithMaxAttempts(50), WithClientLogger(r.opts.logger)}
	if def, ok := r.sys.App(name); ok && def.TypesFunc() != nil {
		opts = append(opts, WithTypes(def.TypesFunc()()))
	}
	opts = append(opts, r.opts.clientOpts...)
	return Connect(ctx, r.addrs[name], opts...)
}

// assignAddresses keeps every configured <APP>_GRPC_SERVER_ADDRESS and
// assigns a free localhost port to each application without one.
func (r *Runner) assignAddresses() error {
	addrs := map[string]string{}
	port := r.opts.firstPort
	for _, name := range r.members() {
		key := strings.ToUpper(name) + "_" + EnvServerAddress
		if v, ok := r.env[key]; ok && v != "" {
			addrs[name] = v
			continue
		}
		if v, ok := os.LookupEnv(key); ok && v != "" {
			addrs[name] = v
			continue
		}
		addr, next, err := freeLocalhost(port)
		if err != nil {
			return fmt.Errorf("grpcapp: runner: address for %s: %w", name, err)
		}
		port = next
		addrs[name] = addr
		r.env[key] = addr
	}
	r.mu.Lock()
	r.addrs = addrs
	r.mu.Unlock()
	return nil
}

// members returns the names of the system's applications and projections,
// in the system's order.
func (r *Runner) members() []string {
	var names []string
	for _, a := range r.sys.Apps() {
		names = append(names, a.Name())
	}
	for _, p := range r.sys.Projections() {
		names = append(names, p.Name())
	}
	return names
}

// freeLocalhost returns localhost:<port> for the first port from `from` that
// can be bound (any free port when from is 0), and the port to try next.
// Another process may still take it before the server binds; the server
// then fails to start and says so.
func freeLocalhost(from int) (string, int, error) {
	for p := from; ; p++ {
		if from > 0 && p > from+1000 {
			from = 0
			p = 0
		}
		lis, err := net.Listen("tcp", "localhost:"+strconv.Itoa(p))
		if err != nil {
			if from == 0 {
				return "", 0, err
			}
			continue
		}
		port := lis.Addr().(*net.TCPAddr).Port
		lis.Close()
		next := 0
		if from > 0 {
			next = port + 1
		}
		return "localhost:" + strconv.Itoa(port), next, nil
	}
}

// spawn starts the console's server for one application.
func (r *Runner) spawn(name string) error {
	// A member not in the registry is named by its own name, which the
	// subprocess's server resolves in the system of SYSTEM_TOPIC.
	topic := name
	if reg := r.opts.registry; reg != nil {
		if t, ok := reg.MemberTopic(name); ok {
			topic = t
		}
	}
	args := append(slices.Clone(r.opts.command[1:]), "server", topic)
	cmd := exec.Command(r.opts.command[0], args...)
	env := os.Environ()
	for k, v := range r.env {
		env = append(env, k+"="+v)
	}
	env = append(env, EnvApplicationTop+"="+topic, EnvSystemTopic+"="+r.opts.topic)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = r.opts.output, r.opts.output
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("grpcapp: runner: start %s: %w", name, err)
	}
	p := &subprocess{name: name, cmd: cmd, exited: make(chan struct{})}
	r.mu.Lock()
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	r.opts.logger.Info("started subprocess", "app", name, "pid", cmd.Process.Pid, "address", r.addrs[name])
	go func() {
		err := cmd.Wait()
		close(p.exited)
		if !r.lc.Stopping() {
			if err == nil {
				err = errors.New("exited")
			}
			r.setErr(fmt.Errorf("grpcapp: runner: subprocess %s (pid %d) died: %w", name, cmd.Process.Pid, err))
		}
	}()
	return nil
}

func (r *Runner) setErr(err error) {
	if err == nil {
		return
	}
	if r.lc.Err() == nil {
		r.opts.logger.Error("runner error", "error", err)
	}
	r.lc.Fail(err)
}

// Err returns the first error of the run: a subprocess that died, a server
// that failed, or a follower that gave up on a leader.
func (r *Runner) Err() error { return r.lc.Err() }

// Errored is closed at the first error.
func (r *Runner) Errored() <-chan struct{} { return r.lc.Errored() }

// Wait blocks until the runner fails (its error), is stopped
// (system.ErrRunnerStopped) or ctx ends.
func (r *Runner) Wait(ctx context.Context) error {
	err := r.lc.Wait(ctx)
	if errors.Is(err, lifecycle.ErrStopped) {
		return system.ErrRunnerStopped
	}
	return err
}

// Client returns the runner's client of the named application.
func (r *Runner) Client(name string) (*Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.lc.Started() || r.lc.Stopping() {
		return nil, system.ErrRunnerNotStarted
	}
	c, ok := r.clients[name]
	if !ok {
		return nil, fmt.Errorf("grpcapp: %w: %q", system.ErrAppNotFound, name)
	}
	return c, nil
}

// Get returns a proxy of the named application.
func (r *Runner) Get(name string) (*AppProxy, error) {
	c, err := r.Client(name)
	if err != nil {
		return nil, err
	}
	return c.App(), nil
}

// GetProxy returns a proxy of the system's application of type A:
//
//	orders, err := grpcapp.GetProxy[*orders.Orders](runner)
func GetProxy[A any](r *Runner) (*AppProxy, error) {
	t := reflect.TypeFor[A]()
	for _, a := range r.sys.Apps() {
		if a.Type() == t {
			return r.Get(a.Name())
		}
	}
	return nil, fmt.Errorf("grpcapp: %w: no application of type %s", system.ErrAppNotFound, t)
}

// App returns the running application itself; only in-process runners have
// it (use Get for a proxy in both modes).
func (r *Runner) App(name string) (system.Application, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.lc.Started() || r.lc.Stopping() {
		return nil, system.ErrRunnerNotStarted
	}
	s, ok := r.servers[name]
	if !ok {
		if _, def := r.sys.App(name); def && len(r.procs) > 0 {
			return nil, fmt.Errorf("grpcapp: %w: %q runs in a subprocess (use Get for a proxy)", system.ErrAppNotFound, name)
		}
		return nil, fmt.Errorf("grpcapp: %w: %q", system.ErrAppNotFound, name)
	}
	return s.App().(system.Application), nil
}

// Apps returns the in-process applications in the system's order (none
// with subprocesses).
func (r *Runner) Apps() []system.Application {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.lc.Started() {
		return nil
	}
	apps := []system.Application{}
	for _, a := range r.sys.Apps() {
		if s, ok := r.servers[a.Name()]; ok {
			apps = append(apps, s.App().(system.Application))
		}
	}
	return apps
}

// Stop closes the clients, stops the in-process servers (which close their
// applications) and terminates the subprocesses (SIGTERM, then SIGKILL after
// 10 s). It is idempotent and returns the first error of the run.
func (r *Runner) Stop() error {
	r.haltOnce.Do(func() { r.lc.OnStop(r.halt) })
	return r.lc.Stop(r.opts.stopTimeout + time.Second)
}

// halt closes the clients, stops the servers and the subprocesses.
func (r *Runner) halt(context.Context) error {
	r.mu.Lock()
	clients, servers, procs := r.clients, r.servers, r.procs
	r.mu.Unlock()
	var errs []error
	for _, c := range clients {
		errs = append(errs, c.Close())
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.stopTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, s := range servers {
		wg.Go(func() {
			err := s.Stop(ctx)
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	for _, p := range procs {
		wg.Go(func() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
				if st := p.cmd.ProcessState; st != nil && !st.Success() && !signalled(st) {
					mu.Lock()
					errs = append(errs, fmt.Errorf("grpcapp: runner: subprocess %s: %s", p.name, st))
					mu.Unlock()
				}
			case <-ctx.Done():
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func signalled(st *os.ProcessState) bool {
	ws, ok := st.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM
}

// FreeLocalhostAddress returns localhost:<port> for a port that was free a
// moment ago.
func FreeLocalhostAddress() (string, error) {
	addr, _, err := freeLocalhost(0)
	return addr, err
}
