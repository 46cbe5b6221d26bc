package esdbtest

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/projections"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ServerVersion is the EventStoreDB version the server reports.
const ServerVersion = "24.10.0"

// Option configures a Server.
type Option func(*config)

type config struct {
	addr    string
	tls     bool
	users   map[string]string
	dataDir string
	logger  *slog.Logger
	// projections is the projections mode (see WithProjections).
	projections ProjectionsMode
	// tick is the period of the persistent subscriptions' timer (default
	// one second, as on a real node); tests of the package change it.
	tick time.Duration
}

// WithAddr sets the listen address (default "127.0.0.1:0", a free port).
// Use it with the address of a previous server to restart on the same port.
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithTLS serves TLS with a freshly generated CA and a server certificate
// for 127.0.0.1, ::1 and localhost. The CA is available from
// [Server.CACertPEM] and [Server.CAFile], and [Server.URI] names the file.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithUsers enables basic authentication with the given login → password
// pairs. Calls without credentials are denied (PermissionDenied) and calls
// with bad credentials are Unauthenticated, as on a secure node. The client
// sends credentials only over TLS, so combine it with [WithTLS].
func WithUsers(users map[string]string) Option {
	return func(c *config) {
		c.users = make(map[string]string, len(users))
		for u, p := range users {
			c.users[u] = p
		}
	}
}

// WithDataDir keeps the log in a file in dir, so a server restarted on the
// same directory has the same events, positions and persistent
// subscription groups. The default is memory only.
func WithDataDir(dir string) Option { return func(c *config) { c.dataDir = dir } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Server is an in-process EventStoreDB node speaking the gRPC protocol.
type Server struct {
	cfg    config
	lis    net.Listener
	grpc   *grpc.Server
	store  *store
	subs   *persistentSubs
	proj   *projectionManager
	log    *slog.Logger
	caPEM  []byte
	caFile string
	cert   *tls.Certificate // the server certificate, with WithTLS
	tmpDir string
	// ctx ends when the server closes, ending every subscription.
	ctx    context.Context
	cancel context.CancelFunc

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

// NewServer starts a server listening on 127.0.0.1 (a free port unless
// [WithAddr] says otherwise). It is ready for clients when it returns.
func NewServer(opts ...Option) (*Server, error) {
	s, err := newCore(opts)
	if err != nil {
		return nil, err
	}
	s.grpc = s.newGRPC(&gossipServer{srv: s}, nil, nil)
	lis, err := net.Listen("tcp", s.cfg.addr)
	if err != nil {
		s.closeCore()
		return nil, fmt.Errorf("esdbtest: listen: %w", err)
	}
	s.lis = lis
	go func() {
		defer close(s.done)
		if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("esdbtest: serve", "err", err)
		}
	}()
	s.log.Info("esdbtest: listening", "addr", lis.Addr().String(), "tls", s.cfg.tls, "data", s.cfg.dataDir)
	return s, nil
}

// newCore builds what the nodes of a server or a cluster share: the log,
// the persistent subscriptions, the projections and the TLS certificate.
func newCore(opts []Option) (*Server, error) {
	cfg := config{addr: "127.0.0.1:0"}
	for _, o := range opts {
		o(&cfg)
	}
	logger := cfg.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, store: newStore(), log: logger, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	if cfg.dataDir != "" {
		f, err := openLogFile(cfg.dataDir, s.store.index)
		if err != nil {
			return nil, fmt.Errorf("esdbtest: %w", err)
		}
		s.store.file = f
	}
	if err := s.seed(); err != nil {
		s.closeStore()
		return nil, fmt.Errorf("esdbtest: seed: %w", err)
	}
	s.subs = newPersistentSubs(s)
	s.subs.load()
	if cfg.tls {
		cert, err := s.makeTLS()
		if err != nil {
			s.closeStore()
			s.removeTmp()
			return nil, fmt.Errorf("esdbtest: tls: %w", err)
		}
		s.cert = &cert
	}
	if cfg.projections != ProjectionsNone {
		s.proj = newProjectionManager(s, cfg.projections)
	}
	return s, nil
}

// newGRPC builds a gRPC server for the core's services, with gs as its
// gossip; the interceptors (if any) run after authentication.
func (s *Server) newGRPC(gs gossip.GossipServer, unary grpc.UnaryServerInterceptor, stream grpc.StreamServerInterceptor) *grpc.Server {
	unaries := []grpc.UnaryServerInterceptor{s.unaryCall, s.unaryAuth}
	streamers := []grpc.StreamServerInterceptor{s.streamCall, s.streamAuth}
	if unary != nil {
		unaries = append(unaries, unary)
	}
	if stream != nil {
		streamers = append(streamers, stream)
	}
	sopts := append(transportOptions(), grpc.ChainUnaryInterceptor(unaries...), grpc.ChainStreamInterceptor(streamers...))
	if s.cert != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{*s.cert},
			MinVersion:   tls.VersionTLS12,
		})))
	}
	g := grpc.NewServer(sopts...)
	streams.RegisterStreamsServer(g, &streamsServer{srv: s})
	persistent.RegisterPersistentSubscriptionsServer(g, &persistentServer{srv: s})
	serverfeatures.RegisterServerFeaturesServer(g, &featuresServer{projections: s.cfg.projections != ProjectionsNone})
	gossip.RegisterGossipServer(g, gs)
	if s.proj != nil {
		projections.RegisterProjectionsServer(g, &projectionsServer{m: s.proj})
	}
	return g
}

// transportOptions are the server's gRPC options apart from credentials
// and authentication (the floor benchmarks serve with the same ones).
func transportOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		// The client pings every 10 s even when idle; the default policy
		// (5 min, no pings without streams) would answer with GOAWAY.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		// One event may be 16 MiB; appends are capped at 1 MiB separately.
		grpc.MaxRecvMsgSize(64 << 20),
		grpc.MaxSendMsgSize(64 << 20),
		grpc.ForceServerCodecV2(newRawCodec()),
		grpc.WriteBufferSize(256 << 10),
		grpc.ReadBufferSize(256 << 10),
		grpc.InitialWindowSize(4 << 20),
		grpc.InitialConnWindowSize(8 << 20),
		// Calls run on goroutines kept for them, whose stacks have grown
		// already, rather than on a new goroutine each: a one-event
		// append is a short call, and starting and growing a goroutine
		// for each was a tenth of the server's time.
		grpc.NumStreamWorkers(uint32(runtime.NumCPU())),
	}
}

// Start starts a server for a test and closes it at tb.Cleanup. It fails
// the test if the server cannot start.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := NewServer(opts...)
	if err != nil {
		tb.Fatalf("esdbtest.Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("esdbtest: close: %v", err)
		}
	})
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// URI is a connection string for the official client: for example
// "esdb://127.0.0.1:PORT?tls=false", or with TLS
// "esdb://127.0.0.1:PORT?tls=true&tlsCAFile=/path/ca.pem".
func (s *Server) URI() string { return s.uri("") }

// URIWithCredentials is [Server.URI] with a login in it, for servers with
// [WithUsers] (the client sends it only over TLS).
func (s *Server) URIWithCredentials(login, password string) string {
	return s.uri(url.UserPassword(login, password).String() + "@")
}

func (s *Server) uri(userinfo string) string {
	if !s.cfg.tls {
		return "esdb://" + userinfo + s.lis.Addr().String() + "?tls=false"
	}
	return "esdb://" + userinfo + s.lis.Addr().String() + "?tls=true&tlsCAFile=" + url.QueryEscape(s.caFile)
}

// CACertPEM is the PEM of the CA that signed the server certificate, or nil
// without [WithTLS]. Put it in the client's Configuration.RootCAs.
func (s *Server) CACertPEM() []byte { return s.caPEM }

// CAFile is the path of a file holding [Server.CACertPEM], usable as the
// connection string's tlsCAFile; it is removed by Close. Empty without TLS.
func (s *Server) CAFile() string { return s.caFile }

// Close stops the server: subscriptions end, connections close, and the
// data file (if any) is flushed and closed.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		stopGRPC(s.grpc)
		<-s.done
		s.closeErr = s.closeCore()
	})
	return s.closeErr
}

// stopGRPC stops g gracefully, or at once when clients still hold streams
// open after two seconds.
func stopGRPC(g *grpc.Server) {
	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		g.Stop()
		<-stopped
	}
}

// closeCore stops the projections and closes the log.
func (s *Server) closeCore() error {
	s.cancel()
	if s.proj != nil {
		s.proj.close()
	}
	err := s.closeStore()
	s.removeTmp()
	return err
}

func (s *Server) closeStore() error {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if s.store.file == nil {
		return nil
	}
	err := s.store.file.close()
	s.store.file = nil
	if err != nil {
		return fmt.Errorf("esdbtest: close data file: %w", err)
	}
	return nil
}

func (s *Server) removeTmp() {
	if s.tmpDir != "" {
		_ = os.RemoveAll(s.tmpDir)
	}
}

func (s *Server) makeTLS() (tls.Certificate, error) {
	caPEM, cert, err := generateCerts()
	if err != nil {
		return tls.Certificate{}, err
	}
	dir, err := os.MkdirTemp("", "esdbtest-ca-")
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("temp dir: %w", err)
	}
	s.tmpDir = dir
	s.caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(s.caFile, caPEM, 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("write CA: %w", err)
	}
	s.caPEM = caPEM
	return cert, nil
}

// seed writes the records a fresh real node has, so that user positions are
// well above zero and the official harness's readiness check (reading
// $users) succeeds.
func (s *Server) seed() error {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if len(s.store.log) > 0 {
		return nil
	}
	created := s.store.ticks()
	mk := func(stream string, rev uint64, typ, data string) *record {
		return &record{Stream: stream, Revision: rev, ID: uuid.New(), Type: typ,
			ContentType: contentTypeJSON, Created: created, Data: []byte(data), Meta: []byte{}}
	}
	recs := []*record{
		mk("$settings", 0, "$settings", `{"$userStreamAcl":{"$r":"$all","$w":"$all","$d":"$all","$mr":"$all","$mw":"$all"},"$systemStreamAcl":{"$r":"$admins","$w":"$admins","$d":"$admins","$mr":"$admins","$mw":"$admins"}}`),
		mk("$user-admin", 0, "$user", `{"loginName":"admin","fullName":"Event Store Administrator","groups":["$admins"]}`),
		mk("$users", 0, "$User", `"admin"`),
		mk("$user-ops", 0, "$user", `{"loginName":"ops","fullName":"Event Store Operations","groups":["$ops"]}`),
		mk("$users", 1, "$User", `"ops"`),
	}
	return s.store.commit(recs)
}

// --- authentication ---

// anonymousMethods are called by the client without credentials.
var anonymousMethods = map[string]bool{
	"/event_store.client.server_features.ServerFeatures/GetSupportedMethods": true,
	"/event_store.client.gossip.Gossip/Read":                                 true,
}

func (s *Server) authorize(ctx context.Context, method string) error {
	if s.cfg.users == nil || anonymousMethods[method] {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("exception", "access-denied"))
		return status.Error(codes.PermissionDenied, "Access Denied")
	}
	enc, ok := strings.CutPrefix(vals[0], "Basic ")
	if ok {
		if raw, err := base64.StdEncoding.DecodeString(enc); err == nil {
			if login, pass, ok := strings.Cut(string(raw), ":"); ok {
				if want, ok := s.cfg.users[login]; ok && want == pass {
					return nil
				}
			}
		}
	}
	return status.Error(codes.Unauthenticated, "Bad username or password")
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.authorize(ss.Context(), info.FullMethod); err != nil {
		if info.FullMethod == streams.Streams_Append_FullMethodName {
			// As in Append: answering before the client has sent all
			// turns into EOF on its Send instead of the real status (the
			// other client streams wait for answers, so are not drained).
			var f appendFrame
			drain(func() (struct{}, error) { return struct{}{}, ss.RecvMsg(&f) })
		}
		return err
	}
	return h(srv, ss)
}

// --- server features and gossip ---

type featuresServer struct {
	serverfeatures.UnimplementedServerFeaturesServer
	projections bool // the Projections service is served
}

func (f *featuresServer) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	const streamsSvc = "event_store.client.streams.streams"
	const psSvc = "event_store.client.persistent_subscriptions.persistentsubscriptions"
	both := []string{"stream", "all"}
	m := func(svc, name string, feats ...string) *serverfeatures.SupportedMethod {
		return &serverfeatures.SupportedMethod{ServiceName: svc, MethodName: name, Features: feats}
	}
	return &serverfeatures.SupportedMethods{
		EventStoreServerVersion: ServerVersion,
		Methods: append([]*serverfeatures.SupportedMethod{
			m(streamsSvc, "read", "position", "events"),
			m(streamsSvc, "append"),
			m(streamsSvc, "batchappend"),
			m(streamsSvc, "delete"),
			m(streamsSvc, "tombstone"),
			m(psSvc, "create", both...),
			m(psSvc, "update", both...),
			m(psSvc, "delete", both...),
			m(psSvc, "read", both...),
			m(psSvc, "getinfo", both...),
			m(psSvc, "replayparked", both...),
			m(psSvc, "list", both...),
			m(psSvc, "restartsubsystem"),
			m("event_store.client.gossip.gossip", "read"),
			m("event_store.client.server_features.serverfeatures", "getsupportedmethods"),
		}, f.projectionMethods()...),
	}, nil
}

type gossipServer struct {
	gossip.UnimplementedGossipServer
	srv *Server
}

var instanceID = uuid.New()

// Read answers one live leader at the address the client dialled, so the
// client never reconnects elsewhere.
func (g *gossipServer) Read(ctx context.Context, _ *shared.Empty) (*gossip.ClusterInfo, error) {
	host, port := g.endpoint(ctx)
	return &gossip.ClusterInfo{Members: []*gossip.MemberInfo{{
		InstanceId:   &shared.UUID{Value: &shared.UUID_String_{String_: instanceID.String()}},
		TimeStamp:    time.Now().UnixNano() / 100,
		State:        gossip.MemberInfo_Leader,
		IsAlive:      true,
		HttpEndPoint: &gossip.EndPoint{Address: host, Port: uint32(port)},
	}}}, nil
}

func (g *gossipServer) endpoint(ctx context.Context) (string, int) {
	addr := g.srv.lis.Addr().(*net.TCPAddr)
	host, port := addr.IP.String(), addr.Port
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if a := md.Get(":authority"); len(a) > 0 {
			if h, p, err := net.SplitHostPort(a[0]); err == nil {
				if n, err := strconv.Atoi(p); err == nil && n == port {
					host = h
				}
			}
		}
	}
	return host, port
}

// drain reads a client stream to its end, so that a reply is never sent
// before the client has finished sending.
func drain[T any](recv func() (T, error)) {
	for {
		if _, err := recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}
