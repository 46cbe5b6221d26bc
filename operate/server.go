package operate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server serves the operations endpoints over HTTP:
//
//	/metrics  the metrics in Prometheus's text format
//	/healthz  200 while the process serves
//	/readyz   200 when ready; 503 with the reasons while a follower or
//	          projection has failed, has more dead letters than allowed, or
//	          is stalled (see Readiness), or while the server stops
//
// /readyz answers in text, or in JSON ({"ready":false,"reasons":[...]})
// to a request that accepts application/json.
//
// Its lifecycle is Start, then Stop (idempotent).
type Server struct {
	addr     string
	metrics  http.Handler
	progress Progress
	ready    *readiness
	sample   time.Duration
	logger   *slog.Logger

	mu       sync.Mutex
	lis      net.Listener
	http     *http.Server
	stopping bool
	cancel   context.CancelFunc
	done     chan struct{}
}

// checkTimeout bounds one reading of progress: a member that does not
// answer within it is reported as such.
const checkTimeout = 5 * time.Second

// Option configures NewServer.
type Option func(*Server)

// WithProgress judges readiness from p (default: always ready while
// serving).
func WithProgress(p Progress) Option { return func(s *Server) { s.progress = p } }

// WithReadiness sets the readiness rules (default: no dead-letter limit,
// stalled after DefaultStalledAfter).
func WithReadiness(r Readiness) Option {
	return func(s *Server) { s.ready.rules = r }
}

// WithMetrics serves h at /metrics (Telemetry.MetricsHandler; default 404).
func WithMetrics(h http.Handler) Option { return func(s *Server) { s.metrics = h } }

// WithLogger sets the server's logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// WithSampleInterval sets how often progress is read between requests,
// so that a stall is seen however seldom /readyz is asked (default: a
// tenth of the stall time, between 100 ms and 5 s; never when stalls are
// not checked).
func WithSampleInterval(d time.Duration) Option { return func(s *Server) { s.sample = d } }

// withClock replaces time.Now, for tests.
func withClock(now func() time.Time) Option { return func(s *Server) { s.ready.now = now } }

// NewServer returns a server of the operations endpoints at addr
// (host:port; ":9464" is every interface).
func NewServer(addr string, opts ...Option) *Server {
	s := &Server{
		addr:    addr,
		metrics: http.NotFoundHandler(),
		ready:   newReadiness(Readiness{MaxDeadLetters: -1, StalledAfter: DefaultStalledAfter}, time.Now),
		logger:  slog.Default(),
		done:    make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	if s.sample <= 0 && s.ready.rules.StalledAfter > 0 {
		s.sample = min(max(s.ready.rules.StalledAfter/10, 100*time.Millisecond), 5*time.Second)
	}
	return s
}

// Start binds the address and serves in the background; it fails at once
// when the address cannot be bound. A second Start fails.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.http != nil || s.stopping {
		return errors.New("operate: server already started")
	}
	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("operate: %s=%s: %w", EnvMetricsAddress, s.addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	s.lis = lis
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	go func() {
		if err := s.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("operations endpoints stopped", "address", s.addr, "error", err)
		}
	}()
	go s.sampleLoop(sctx)
	s.logger.Info("operations endpoints", "address", lis.Addr().String(), "paths", "/metrics /healthz /readyz")
	return nil
}

// Addr returns the address listened at (with the port chosen for port 0).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis == nil {
		return s.addr
	}
	return s.lis.Addr().String()
}

// sampleLoop reads progress now and then, so that a stall shows.
func (s *Server) sampleLoop(ctx context.Context) {
	defer close(s.done)
	if s.progress == nil || s.sample <= 0 {
		return // nothing to watch between requests
	}
	t := time.NewTicker(s.sample)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			s.check(cctx)
			cancel()
		}
	}
}

// check reads progress once and judges it.
func (s *Server) check(ctx context.Context) []string {
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		return []string{"stopping"}
	}
	if s.progress == nil {
		return nil
	}
	sts, err := s.progress.Upstreams(ctx)
	return s.ready.observe(sts, err)
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
	defer cancel()
	reasons := s.check(ctx)
	code := http.StatusOK
	if len(reasons) > 0 {
		code = http.StatusServiceUnavailable
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(struct {
			Ready   bool     `json:"ready"`
			Reasons []string `json:"reasons"`
		}{len(reasons) == 0, append([]string{}, reasons...)})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	if len(reasons) == 0 {
		fmt.Fprintln(w, "ready")
		return
	}
	fmt.Fprintln(w, "not ready:")
	for _, reason := range reasons {
		fmt.Fprintln(w, "  "+reason)
	}
}

// Stop makes /readyz answer 503 at once, then closes the listener and
// waits for requests in flight until ctx ends. It is idempotent.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return nil
	}
	s.stopping = true
	srv, cancel := s.http, s.cancel
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	cancel()
	<-s.done
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("operate: stop: %w", err)
	}
	return nil
}
