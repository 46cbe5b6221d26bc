package grpcapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/grpcapp/pb"
	"github.com/eventsourcing-go/eventsourcing/internal/lifecycle"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Application is what a server needs of an application. Every type that
// embeds *eventsourcing.Application has these methods; the server calls only
// them and the type's own exported command and query methods.
type Application interface {
	Name() string
	Env() config.Env
	Types() *eventsourcing.Types
	Recorder() recorder.ApplicationRecorder
}

// Defaults of the server's options.
const (
	DefaultMaxSelectLimit = 1000
	DefaultMaxTopics      = 1000
	DefaultMaxRequestSize = 4 << 20
	DefaultGracePeriod    = 5 * time.Second
	windowSize            = 4 << 20
)

// ServerOption configures NewServer.
type ServerOption func(*serverOptions)

type serverOptions struct {
	address    string
	tls        *TLS
	logger     *slog.Logger
	maxSelect  int
	maxTopics  int
	maxRequest int
	grace      time.Duration
	only       []string
	queries    []string
	register   []func(*grpc.Server)
	telemetry  instrumentation // telemetry.go
}

// WithAddress sets the address to serve at, instead of the application's
// <APP>_GRPC_SERVER_ADDRESS setting. Port 0 picks a free port (see Addr).
func WithAddress(addr string) ServerOption { return func(o *serverOptions) { o.address = addr } }

// WithServerTLS sets the server's TLS files instead of the GRPC_SSL_* settings.
func WithServerTLS(t TLS) ServerOption { return func(o *serverOptions) { o.tls = &t } }

// WithServerLogger sets the server's logger (default: the application's, else slog.Default()).
func WithServerLogger(l *slog.Logger) ServerOption { return func(o *serverOptions) { o.logger = l } }

// WithMaxSelectLimit sets the largest page SelectNotifications serves (default 1,000).
func WithMaxSelectLimit(n int) ServerOption { return func(o *serverOptions) { o.maxSelect = n } }

// WithMaxTopics sets the most topics a SelectNotifications or
// SubscribeNotifications filter may name (default 1,000); more is
// InvalidArgument.
func WithMaxTopics(n int) ServerOption { return func(o *serverOptions) { o.maxTopics = n } }

// WithMaxRequestSize sets the largest request the server accepts, in bytes
// (default 4 MiB); a larger one fails with ResourceExhausted.
func WithMaxRequestSize(n int) ServerOption { return func(o *serverOptions) { o.maxRequest = n } }

// WithGracePeriod sets how long Stop waits for in-flight calls (default 5 s).
func WithGracePeriod(d time.Duration) ServerOption { return func(o *serverOptions) { o.grace = d } }

// WithMethods restricts the callable methods to these names (each must be an
// exported, context-first method of the application's own type).
func WithMethods(names ...string) ServerOption { return func(o *serverOptions) { o.only = names } }

// WithQueries declares more of the application's methods as queries, in
// addition to those it declares itself (QueryDeclarer). Clients retry
// queries, never commands; a name that is not a callable method fails
// NewServer.
func WithQueries(names ...string) ServerOption {
	return func(o *serverOptions) { o.queries = append(o.queries, names...) }
}

// WithService registers another gRPC service on the same server.
func WithService(register func(*grpc.Server)) ServerOption {
	return func(o *serverOptions) { o.register = append(o.register, register) }
}

// Server serves one application over gRPC: its commands and queries, its
// notification log, the standard health service and server reflection (so
// grpcurl works against it).
//
// Its lifecycle is Start, then Stop (idempotent); a stopped server is not
// started again: make a new one over the same application.
type Server struct {
	app     Application
	name    string
	types   *eventsourcing.Types
	methods map[string]*method
	opts    serverOptions
	logger  *slog.Logger
	creds   TLS

	grpc   *grpc.Server
	health *health.Server
	// tel is the server's RPC instrumentation and its command and query
	// spans (telemetry.go).
	tel serverTelemetry

	// kind is KindApplication or KindProjection; progress serves Status,
	// Wait and Rebuild (nil for an application that follows nothing).
	kind     string
	progress progress

	// ctx ends when Stop begins, so that notification streams (which never
	// end by themselves) let the graceful stop finish.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	started  bool
	stopped  bool
	lis      net.Listener
	serveErr error
	served   chan struct{}
	hooks    []lifecycleHook

	// lc keeps the first background error (Err, Errored, Wait).
	lc lifecycle.Lifecycle
}

// lifecycleHook is a background job that shares the server's lifecycle,
// such as a follower's pulling loop.
type lifecycleHook struct {
	start func(ctx context.Context) error
	stop  func(ctx context.Context) error
}

// NewServer returns a server for app. The address and TLS files come from
// the options, else from the application's settings (ConfigFromEnv).
func NewServer(app Application, opts ...ServerOption) (*Server, error) {
	o := serverOptions{maxSelect: DefaultMaxSelectLimit, maxTopics: DefaultMaxTopics, maxRequest: DefaultMaxRequestSize, grace: DefaultGracePeriod}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := ConfigFromEnv(app.Env())
	if err != nil {
		return nil, fmt.Errorf("grpcapp: server for %s: %w", app.Name(), err)
	}
	if o.address == "" {
		if cfg.Address == "" {
			return nil, fmt.Errorf("grpcapp: server for %s: %w: %s is not set", app.Name(), config.ErrConfiguration, app.Env().Prefixed(EnvServerAddress))
		}
		o.address = cfg.Address
	}
	if o.tls == nil {
		o.tls = &cfg.TLS
	}
	var target any = app
	var exclude []reflect.Type
	if t, ok := app.(interface{ methodTarget() any }); ok {
		// A projection's view: its own queries, not the runtime's side of
		// it (tracking, Reset, Close).
		target, exclude = t.methodTarget(), viewTypes
	}
	methods, err := methodsOf(target, o.only, o.queries, exclude...)
	if err != nil {
		return nil, fmt.Errorf("grpcapp: server for %s: %w", app.Name(), err)
	}
	logger := o.logger
	if logger == nil {
		if l, ok := app.(interface{ Logger() *slog.Logger }); ok {
			logger = l.Logger()
		} else {
			logger = slog.Default()
		}
	}
	s := &Server{
		app: app, name: app.Name(), types: app.Types(), methods: methods, opts: o, creds: *o.tls, kind: KindApplication,
		logger: logger.With("app", app.Name()), served: make(chan struct{}), tel: o.telemetry.server(app.Name(), methods),
	}
	// Check the credentials now, so that a misconfigured server fails at
	// construction rather than at its first connection.
	if _, err := s.creds.serverCredentials(o.address); err != nil {
		return nil, fmt.Errorf("grpcapp: server for %s: %w", app.Name(), err)
	}
	return s, nil
}

// App returns the served application.
func (s *Server) App() Application { return s.app }

// Start binds the address and serves in the background. It returns once the
// server accepts connections (and its background jobs have started), or with
// the first error. A second Start fails with ErrServerStarted.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("grpcapp: server for %s: %w", s.name, ErrServerStarted)
	}
	s.started = true
	creds, err := s.creds.serverCredentials(s.opts.address)
	if err != nil {
		return fmt.Errorf("grpcapp: server for %s: %w", s.name, err)
	}
	if !s.plaintext() {
		creds = loggedServerCredentials{TransportCredentials: creds, log: &refusals{logger: s.logger}}
	}
	lis, err := listen(s.opts.address)
	if err != nil {
		return fmt.Errorf("grpcapp: server for %s: %w", s.name, err)
	}
	s.lis = lis
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	gopts := []grpc.ServerOption{
		grpc.Creds(creds),
		grpc.MaxRecvMsgSize(s.opts.maxRequest),
		// Pages of 1,000 notifications are hundreds of kilobytes: larger
		// flow-control windows than the 64 KiB default let one go out
		// without waiting for window updates.
		grpc.InitialWindowSize(windowSize),
		grpc.InitialConnWindowSize(windowSize),
		// The protobuf codec, recycling packed pages' columns (codec.go).
		grpc.ForceServerCodecV2(serverCodec{protoCodec}),
	}
	// The telemetry's interceptors (telemetry.go).
	gopts = append(gopts, s.tel.serverOptions()...)
	s.grpc = grpc.NewServer(serverKeepalive(gopts...)...) // keepalive.go
	pb.RegisterApplicationServer(s.grpc, &handler{s: s})
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	for _, r := range s.opts.register {
		r(s.grpc)
	}
	s.tel.register(s.grpc)
	go func() {
		defer close(s.served)
		if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			err = fmt.Errorf("grpcapp: serve %s at %s: %w", s.name, s.opts.address, err)
			s.mu.Lock()
			s.serveErr = err
			s.mu.Unlock()
			s.reportErr(err)
		}
	}()
	for i, h := range s.hooks {
		if err := h.start(s.ctx); err != nil {
			// Undo what started (stopLocked stops the started jobs in
			// reverse) and report the first error.
			s.hooks = s.hooks[:i]
			_ = s.stopLocked(ctx)
			return fmt.Errorf("grpcapp: server for %s: %w", s.name, err)
		}
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(pb.Application_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	// Also under the served member's name, so that a health check can ask
	// for "Orders" or "OrdersSummary".
	s.health.SetServingStatus(s.name, healthpb.HealthCheckResponse_SERVING)
	attrs := []any{"address", lis.Addr().String(), "tls", !s.plaintext(), "methods", len(s.methods)}
	if m, ok := s.app.(interface{ PersistenceModule() string }); ok && m.PersistenceModule() != "" {
		attrs = append(attrs, "persistence", m.PersistenceModule())
	}
	s.logger.Info("grpc server started", attrs...)
	return nil
}

func (s *Server) plaintext() bool {
	return s.creds.Insecure || IsLocalhost(s.opts.address) && !s.creds.complete()
}

// onLifecycle adds a background job started after the server binds and
// stopped before it stops serving.
func (s *Server) onLifecycle(start, stop func(ctx context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, lifecycleHook{start: start, stop: stop})
}

// Addr returns the address the server listens at (with the port chosen when
// the configured port was 0), or the configured address before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis == nil {
		return s.opts.address
	}
	if isLocalhostName(s.opts.address) {
		_, port, _ := net.SplitHostPort(s.lis.Addr().String())
		return "localhost:" + port
	}
	return s.lis.Addr().String()
}

// Stop stops the background jobs, ends notification streams, lets in-flight
// calls finish within the grace period (or until ctx ends), then closes every
// connection. It is idempotent and returns the first error of the server's life.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked(ctx)
}

func (s *Server) stopLocked(ctx context.Context) error {
	if s.stopped {
		return s.firstErr()
	}
	s.stopped = true
	var errs []error
	for i := len(s.hooks) - 1; i >= 0; i-- {
		if err := s.hooks[i].stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if !s.started || s.grpc == nil {
		// Never served (or Start failed before serving, for example because
		// the address was taken): only what NewSystemServer built needs
		// releasing.
		return errors.Join(errs...)
	}
	s.health.Shutdown()
	s.cancel()
	drained := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(drained)
	}()
	timer := time.NewTimer(s.opts.grace)
	defer timer.Stop()
	select {
	case <-drained:
	case <-timer.C:
		s.grpc.Stop()
	case <-ctx.Done():
		s.grpc.Stop()
	}
	s.mu.Unlock()
	<-s.served
	s.mu.Lock()
	s.logger.Info("grpc server stopped", "address", s.opts.address)
	if err := s.firstErr(); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// firstErr returns the error that ended serving or the first background
// error (a follower that gave up); s.mu is held.
func (s *Server) firstErr() error {
	if s.serveErr != nil {
		return s.serveErr
	}
	return s.lc.Err()
}

// reportErr records a background job's error; the first one is kept.
func (s *Server) reportErr(err error) {
	if err == nil {
		return
	}
	first := s.lc.Err() == nil
	s.lc.Fail(err)
	if first && s.health != nil {
		s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		s.health.SetServingStatus(s.name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
}

// Errored is closed at the first error of the server's life: serving
// failed, or a follower gave up on a leader.
func (s *Server) Errored() <-chan struct{} { return s.lc.Errored() }

// Wait blocks until the server fails (its error) or ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	select {
	case <-s.lc.Errored():
		return s.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the server has stopped serving.
func (s *Server) Done() <-chan struct{} { return s.served }

// Err returns the first error of the server's life so far, or nil.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstErr()
}

// handler implements the protocol's service.
type handler struct {
	pb.UnimplementedApplicationServer
	s *Server
}

func (h *handler) Ping(context.Context, *pb.PingRequest) (*pb.PingReply, error) {
	return &pb.PingReply{}, nil
}

func (h *handler) Describe(context.Context, *pb.DescribeRequest) (*pb.DescribeReply, error) {
	r := &pb.DescribeReply{Name: h.s.name, MaxSelectLimit: int32(h.s.opts.maxSelect)}
	for _, m := range h.s.methods {
		pm := &pb.Method{Name: m.name, Params: m.inNames, Query: m.query}
		for _, o := range m.out {
			pm.Results = append(pm.Results, o.String())
		}
		r.Methods = append(r.Methods, pm)
	}
	return r, nil
}

func (h *handler) Call(ctx context.Context, req *pb.CallRequest) (*pb.CallReply, error) {
	m := h.s.methods[req.GetMethod()]
	if m == nil {
		return nil, toStatus(fmt.Errorf("%w: %s has no method %q (callable: exported methods of the application's own type that take a context first)", ErrUnknownMethod, h.s.name, req.GetMethod()), req.GetMethod())
	}
	args, err := m.decodeArgs(h.s.types, req.GetArgs())
	if err != nil {
		return nil, toStatus(err, m.name)
	}
	// The RPC's server span is the method's (telemetry.go).
	out, err := m.invoke(ctx, args)
	if err != nil {
		var p *panicError
		if errors.As(err, &p) {
			h.s.logger.Error("method panicked", "method", m.name, "panic", p.value)
			return nil, status.Error(codes.Internal, err.Error())
		}
		return nil, toStatus(err, m.name)
	}
	data, err := encodeResult(h.s.types, out)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%s: encode result: %v", m.name, err)
	}
	return &pb.CallReply{Result: data}, nil
}

func (h *handler) SelectNotifications(ctx context.Context, req *pb.SelectRequest) (*pb.SelectReply, error) {
	if err := h.s.checkTopics(req.GetTopics()); err != nil {
		return nil, toStatus(err, "SelectNotifications")
	}
	limit := int(req.GetLimit())
	switch {
	case limit < 0 || limit > h.s.opts.maxSelect:
		return nil, toStatus(fmt.Errorf("%w: limit %d is not in 0..%d (0 is the application's section size)", eventsourcing.ErrArgument, limit, h.s.opts.maxSelect), "SelectNotifications")
	case limit == 0:
		limit = eventsourcing.DefaultSectionSize
		if l, ok := h.s.app.(interface {
			Log() *eventsourcing.NotificationLog
		}); ok {
			limit = l.Log().SectionSize()
		}
	}
	q := recorder.NotificationQuery{After: positionFromPB(req.Start), Inclusive: !req.GetExclusiveStart(), Limit: limit, Stop: boundFromPB(req.Stop), Topics: req.GetTopics()}
	rec := h.s.app.Recorder()
	if rec == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is a %s: it has no notification log", h.s.name, h.s.kind)
	}
	ns, err := rec.SelectNotifications(ctx, q)
	if err != nil {
		return nil, toStatus(err, "SelectNotifications")
	}
	if req.GetPacked() {
		return &pb.SelectReply{Packed: pack(ns)}, nil
	}
	return &pb.SelectReply{Notifications: toPB(ns)}, nil
}

// checkTopics refuses a topic filter above the server's cap.
func (s *Server) checkTopics(topics []string) error {
	if len(topics) > s.opts.maxTopics {
		return fmt.Errorf("%w: %d topics in the filter, at most %d are allowed", eventsourcing.ErrArgument, len(topics), s.opts.maxTopics)
	}
	return nil
}

// toPB converts notifications in one allocation of messages.
func toPB(ns []recorder.Notification) []*pb.Notification {
	msgs := make([]pb.Notification, len(ns))
	out := make([]*pb.Notification, len(ns))
	for i := range ns {
		m := &msgs[i]
		m.Id, m.OriginatorId, m.OriginatorVersion, m.Topic, m.State = ns[i].ID, ns[i].OriginatorID, ns[i].OriginatorVersion, ns[i].Topic, ns[i].State
		m.TraceParent = ns[i].TraceParent
		out[i] = m
	}
	return out
}

// fromPB converts notifications of the unpacked form (from servers that
// predate packed pages).
func fromPB(ms []*pb.Notification) []recorder.Notification {
	ns := make([]recorder.Notification, len(ms))
	for i, m := range ms {
		ns[i] = recorder.Notification{ID: m.GetId(), StoredEvent: recorder.StoredEvent{
			OriginatorID: m.GetOriginatorId(), OriginatorVersion: m.GetOriginatorVersion(), Topic: m.GetTopic(), State: m.GetState(),
			TraceParent: m.GetTraceParent(),
		}}
	}
	return ns
}

func (h *handler) SubscribeNotifications(req *pb.SubscribeRequest, stream grpc.ServerStreamingServer[pb.NotificationBatch]) error {
	// The stream ends with the client, or when the server stops.
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(h.s.ctx, cancel)
	defer stop()

	if err := h.s.checkTopics(req.GetTopics()); err != nil {
		return toStatus(err, "SubscribeNotifications")
	}
	batch := int(req.GetMaxBatch())
	if batch < 0 {
		return toStatus(fmt.Errorf("%w: max_batch %d is negative (0 is the server's default, %d)", eventsourcing.ErrArgument, batch, h.s.opts.maxSelect), "SubscribeNotifications")
	}
	if batch == 0 || batch > h.s.opts.maxSelect {
		batch = h.s.opts.maxSelect
	}
	after := positionFromPB(req.After)
	rec := h.s.app.Recorder()
	if rec == nil {
		return status.Errorf(codes.FailedPrecondition, "%s is a %s: it has no notification log", h.s.name, h.s.kind)
	}
	sub, err := rec.Subscribe(ctx, after, req.GetTopics())
	if err != nil {
		return toStatus(err, "SubscribeNotifications")
	}
	defer sub.Close()

	// One goroutine waits on the subscription; the sender takes whatever has
	// arrived since its last send, so a follower catching up gets full
	// batches and an idle one gets each notification at once.
	ch := make(chan recorder.Notification, batch)
	errc := make(chan error, 1)
	go func() {
		defer close(ch)
		for {
			n, err := sub.Next(ctx)
			if err != nil {
				errc <- err
				return
			}
			select {
			case ch <- n:
			case <-ctx.Done():
				return
			}
		}
	}()
	buf := make([]recorder.Notification, 0, batch)
	for {
		buf = buf[:0]
		n, ok := <-ch
		if !ok {
			break
		}
		buf = append(buf, n)
	drain:
		for len(buf) < batch {
			select {
			case n, ok := <-ch:
				if !ok {
					break drain
				}
				buf = append(buf, n)
			default:
				break drain
			}
		}
		msg := &pb.NotificationBatch{}
		if req.GetPacked() {
			msg.Packed = pack(buf)
		} else {
			msg.Notifications = toPB(buf)
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	select {
	case err := <-errc:
		if ctx.Err() != nil || errors.Is(err, recorder.ErrSubscriptionClosed) {
			// Stopping: tell the follower to reconnect elsewhere or later.
			return status.Error(codes.Unavailable, "server stopping")
		}
		return toStatus(err, "SubscribeNotifications")
	default:
		return status.Error(codes.Unavailable, "server stopping")
	}
}
