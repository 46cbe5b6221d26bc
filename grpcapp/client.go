package grpcapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/grpcapp/pb"
	"github.com/eventsourcing-go/eventsourcing/internal/ctxtime"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Defaults of the client's options.
const (
	DefaultMaxAttempts = 10
	DefaultCallTimeout = 5 * time.Second
	DefaultBackoffMin  = 50 * time.Millisecond
	DefaultBackoffMax  = time.Second
	// DefaultMaxReplySize bounds one reply (a page of 1,000 notifications
	// with large states still fits).
	DefaultMaxReplySize = 64 << 20
)

// ClientOption configures Connect and NewClient.
type ClientOption func(*clientOptions)

type clientOptions struct {
	types       *eventsourcing.Types
	tls         *TLS
	maxAttempts int
	callTimeout time.Duration
	backoffMin  time.Duration
	backoffMax  time.Duration
	logger      *slog.Logger
	queries     []string
	dial        []grpc.DialOption
	telemetry   instrumentation // telemetry.go
}

// WithTypes sets the type registry whose transcodings encode arguments and
// decode results; it must know the same transcodings as the server's
// application (default: the built-in UUID, decimal and time transcodings).
func WithTypes(t *eventsourcing.Types) ClientOption { return func(o *clientOptions) { o.types = t } }

// WithTLS sets the client's TLS files (default: none, which allows only
// loopback addresses: localhost, 127.0.0.1 or [::1] with a port).
func WithTLS(t TLS) ClientOption { return func(o *clientOptions) { o.tls = &t } }

// WithMaxAttempts bounds the attempts of the readiness wait and of each
// query (default 10). Commands are sent at most once.
func WithMaxAttempts(n int) ClientOption { return func(o *clientOptions) { o.maxAttempts = max(1, n) } }

// WithCallTimeout sets each attempt's deadline (default 5 s); a deadline of
// the caller's context that comes sooner wins.
func WithCallTimeout(d time.Duration) ClientOption {
	return func(o *clientOptions) { o.callTimeout = d }
}

// WithBackoff sets the delay before the second attempt and the largest delay
// (default 50 ms doubling up to 1 s, with jitter).
func WithBackoff(first, most time.Duration) ClientOption {
	return func(o *clientOptions) { o.backoffMin, o.backoffMax = first, max(first, most) }
}

// WithClientLogger sets the client's logger (default slog.Default()).
func WithClientLogger(l *slog.Logger) ClientOption { return func(o *clientOptions) { o.logger = l } }

// WithQueryMethods marks methods as queries on the client side, in addition
// to those the server describes as queries; queries are retried.
func WithQueryMethods(names ...string) ClientOption {
	return func(o *clientOptions) { o.queries = append(o.queries, names...) }
}

// WithDialOptions adds gRPC dial options.
func WithDialOptions(opts ...grpc.DialOption) ClientOption {
	return func(o *clientOptions) { o.dial = append(o.dial, opts...) }
}

// Client is a connection to one application server. It reconnects by
// itself, so one client outlives restarts of its server. It is safe for
// concurrent use.
type Client struct {
	addr   string
	conn   *grpc.ClientConn
	rpc    pb.ApplicationClient
	opts   clientOptions
	logger *slog.Logger
	closed atomic.Bool

	descMu  sync.Mutex
	desc    *pb.DescribeReply
	queries map[string]bool
}

// NewClient returns a client for the server at addr without contacting it;
// the connection is made on the first call. Most callers want Connect.
func NewClient(addr string, opts ...ClientOption) (*Client, error) {
	o := clientOptions{
		maxAttempts: DefaultMaxAttempts, callTimeout: DefaultCallTimeout,
		backoffMin: DefaultBackoffMin, backoffMax: DefaultBackoffMax,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.types == nil {
		o.types = eventsourcing.NewTypes()
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	var t TLS
	if o.tls != nil {
		t = *o.tls
	}
	creds, err := t.clientCredentials(addr)
	if err != nil {
		return nil, err
	}
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// The channel's own reconnection follows the same short backoff as
		// the calls, so a restarted server is found again within a second.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: o.backoffMin, Multiplier: 1.6, Jitter: 0.2, MaxDelay: o.backoffMax},
			MinConnectTimeout: max(time.Second, o.callTimeout),
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(DefaultMaxReplySize)),
		clientKeepalive, // keepalive.go
		grpc.WithInitialWindowSize(windowSize),
		grpc.WithInitialConnWindowSize(windowSize),
		// The telemetry's interceptors first, so that the program's own
		// run inside the RPC's span (telemetry.go).
	}, append(o.telemetry.dialOptions(addr), o.dial...)...)
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return nil, fmt.Errorf("grpcapp: client for %s: %w", addr, err)
	}
	c := &Client{addr: addr, conn: conn, rpc: pb.NewApplicationClient(conn), opts: o, logger: o.logger.With("server", addr), queries: map[string]bool{}}
	for _, q := range o.queries {
		c.queries[q] = true
	}
	return c, nil
}

// Connect returns a client for the server at addr once the server answers,
// retrying with backoff up to the maximum number of attempts or until ctx
// ends. It fails with an error matching ErrUnavailable when the server never
// answered.
func Connect(ctx context.Context, addr string, opts ...ClientOption) (*Client, error) {
	c, err := NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.WaitReady(ctx); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// WaitReady waits until the server answers a ping, then reads its method
// descriptions (which tell queries from commands).
func (c *Client) WaitReady(ctx context.Context) error {
	if err := c.Ping(ctx); err != nil {
		return fmt.Errorf("grpcapp: connect %s: %w", c.addr, err)
	}
	if _, err := c.Describe(ctx); err != nil {
		return fmt.Errorf("grpcapp: connect %s: %w", c.addr, err)
	}
	return nil
}

// Addr returns the server's address.
func (c *Client) Addr() string { return c.addr }

// Conn returns the underlying connection, for other services on the same
// server (health) and for benchmarks.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection; later calls fail with ErrClientClosed. It is
// idempotent.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("grpcapp: close client for %s: %w", c.addr, err)
	}
	return nil
}

// Ping checks that the server answers, retrying up to the maximum number of
// attempts.
func (c *Client) Ping(ctx context.Context) error {
	return c.retry(ctx, "Ping", true, func(ctx context.Context) error {
		_, err := c.rpc.Ping(ctx, &pb.PingRequest{})
		return err
	})
}

// Describe returns the server's application name and method descriptions.
func (c *Client) Describe(ctx context.Context) (*pb.DescribeReply, error) {
	var r *pb.DescribeReply
	err := c.retry(ctx, "Describe", true, func(ctx context.Context) (err error) {
		r, err = c.rpc.Describe(ctx, &pb.DescribeRequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	c.descMu.Lock()
	c.desc = r
	for _, m := range r.GetMethods() {
		if m.GetQuery() {
			c.queries[m.GetName()] = true
		}
	}
	c.descMu.Unlock()
	return r, nil
}

// Name returns the served application's name, once known (after Connect).
func (c *Client) Name() string {
	c.descMu.Lock()
	defer c.descMu.Unlock()
	return c.desc.GetName()
}

func (c *Client) isQuery(method string) bool {
	c.descMu.Lock()
	defer c.descMu.Unlock()
	return c.queries[method]
}

// App returns the application proxy.
func (c *Client) App() *AppProxy { return &AppProxy{c: c} }

// Log returns the notification-log proxy.
func (c *Client) Log() *LogProxy { return &LogProxy{c: c} }

// retry runs one RPC attempt after another while the failure says the
// server was not reached or did not answer in time, and retryable is true.
// A non-retryable RPC still gets the readiness wait (a ping) first, so that
// a command is sent only over a channel that reached the server.
func (c *Client) retry(ctx context.Context, name string, retryable bool, attempt func(ctx context.Context) error) error {
	if c.closed.Load() {
		return fmt.Errorf("grpcapp: %s: %w", name, ErrClientClosed)
	}
	if !retryable {
		if c.conn.GetState() != connectivity.Ready {
			if err := c.Ping(ctx); err != nil {
				return err
			}
		}
		err := c.once(ctx, attempt)
		return c.mapErr(ctx, err, name)
	}
	var err error
	for n := 1; ; n++ {
		err = c.once(ctx, attempt)
		if err == nil {
			return nil
		}
		if !transient(err) || n >= c.opts.maxAttempts || ctx.Err() != nil || c.closed.Load() {
			break
		}
		if !ctxtime.Sleep(ctx, c.backoff(n)) {
			break
		}
	}
	err = c.mapErr(ctx, err, name)
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrDeadlineExceeded) {
		return fmt.Errorf("after %d attempt(s): %w", c.opts.maxAttempts, err)
	}
	return err
}

// once runs one attempt within the call timeout. The timeout is the
// client's own: a timer cancels the attempt, and gRPC cancels the server's
// context with it (RST_STREAM), so that the server need not arm a timer of
// its own for every call as it does for a deadline sent in the request
// (the caller's own deadline, if any, is still sent). An attempt cut short
// by the timer fails with DeadlineExceeded.
func (c *Client) once(ctx context.Context, attempt func(ctx context.Context) error) error {
	if c.opts.callTimeout <= 0 {
		return attempt(ctx)
	}
	t := attemptTimer{}
	actx, cancel := context.WithCancel(ctx)
	t.cancel = cancel
	t.timer = time.AfterFunc(c.opts.callTimeout, t.fire)
	err := attempt(actx)
	t.timer.Stop()
	cancel()
	if t.fired.Load() && status.Code(err) == codes.Canceled && ctx.Err() == nil {
		return status.Errorf(codes.DeadlineExceeded, "no answer within the call timeout (%s)", c.opts.callTimeout)
	}
	return err
}

// attemptTimer cancels an attempt when its time is up.
type attemptTimer struct {
	cancel context.CancelFunc
	timer  *time.Timer
	fired  atomic.Bool
}

func (t *attemptTimer) fire() {
	t.fired.Store(true)
	t.cancel()
}

func (c *Client) mapErr(ctx context.Context, err error, name string) error {
	if err == nil {
		return nil
	}
	if c.closed.Load() {
		return fmt.Errorf("grpcapp: %s: %w", name, ErrClientClosed)
	}
	return fromStatus(ctx, err, name)
}

// transient reports failures worth another attempt of a query.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// backoff returns the delay after attempt n: doubling from the first delay
// up to the largest, with ±20 % jitter so that many clients do not retry in step.
func (c *Client) backoff(n int) time.Duration {
	d := c.opts.backoffMin << min(n-1, 20)
	if d > c.opts.backoffMax || d <= 0 {
		d = c.opts.backoffMax
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// AppProxy calls an application's commands and queries on its server.
type AppProxy struct{ c *Client }

// Client returns the proxy's client.
func (p *AppProxy) Client() *Client { return p.c }

// Call runs the named method with the given arguments (after the context)
// and returns its result as JSON in the application's transcoding (null for
// none, an array for several results). Queries (as the server describes
// them) are retried on Unavailable and on a missed per-attempt deadline;
// commands are sent once, after a readiness wait, so that a command the
// server may have run is never run again by this client.
func (p *AppProxy) Call(ctx context.Context, method string, args ...any) ([]byte, error) {
	data, err := p.encodeArgs(args)
	if err != nil {
		return nil, fmt.Errorf("grpcapp: %s: encode arguments: %w", method, err)
	}
	var reply *pb.CallReply
	err = p.c.retry(ctx, method, p.c.isQuery(method), func(ctx context.Context) (err error) {
		reply, err = p.c.rpc.Call(ctx, &pb.CallRequest{Method: method, Args: data})
		return err
	})
	if err != nil {
		return nil, err
	}
	return reply.GetResult(), nil
}

// encodeArgs encodes the arguments as a JSON array; json.RawMessage
// arguments are sent as they are (a command line's JSON).
func (p *AppProxy) encodeArgs(args []any) ([]byte, error) {
	b := make([]byte, 0, 64)
	b = append(b, '[')
	for i, a := range args {
		if i > 0 {
			b = append(b, ',')
		}
		if raw, ok := a.(json.RawMessage); ok {
			b = append(b, raw...)
			continue
		}
		data, err := p.c.opts.types.Encode(a)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		b = append(b, data...)
	}
	return append(b, ']'), nil
}

// Call runs a remote method and decodes its result into a T:
//
//	id, err := grpcapp.Call[uuid.UUID](ctx, orders, "CreateNewOrder")
//	order, err := grpcapp.Call[orders.OrderView](ctx, orders, "GetOrder", id)
//
// A method with several results decodes as an array (use a slice or [N]any).
func Call[T any](ctx context.Context, p *AppProxy, method string, args ...any) (T, error) {
	var v T
	data, err := p.Call(ctx, method, args...)
	if err != nil {
		return v, err
	}
	if err := p.c.opts.types.Decode(data, &v); err != nil {
		return v, fmt.Errorf("grpcapp: %s: decode result as %T: %w", method, v, err)
	}
	return v, nil
}

// LogProxy reads an application's notification log on its server.
type LogProxy struct{ c *Client }

// Select returns notifications as the query says; the server refuses a
// limit above its page limit (1,000 by default) with ErrArgument. It is a
// query, so it is retried.
func (l *LogProxy) Select(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error) {
	if q.Limit < 0 || q.Limit > math.MaxInt32 {
		// Not truncated to 32 bits into some other limit.
		return nil, fmt.Errorf("grpcapp: SelectNotifications: %w: limit %d is not in 0..%d", eventsourcing.ErrArgument, q.Limit, math.MaxInt32)
	}
	start := optionalInt(q.After.ID())
	req := &pb.SelectRequest{Start: start, ExclusiveStart: start != nil && !q.Inclusive, Limit: int32(q.Limit), Stop: optionalInt(q.Stop.Value()), Topics: q.Topics, Packed: true}
	var reply *pb.SelectReply
	err := l.c.retry(ctx, "SelectNotifications", true, func(ctx context.Context) (err error) {
		reply, err = l.c.rpc.SelectNotifications(ctx, req, grpc.ForceCodecV2(clientCodec{protoCodec}))
		return err
	})
	if err != nil {
		return nil, err
	}
	if p := reply.GetPacked(); p != nil {
		ns, err := unpack(p)
		if err != nil {
			return nil, fmt.Errorf("grpcapp: SelectNotifications: %w", err)
		}
		return ns, nil
	}
	return fromPB(reply.GetNotifications()), nil
}

// SelectNotifications is Select, so that the proxy reads like a recorder.
func (l *LogProxy) SelectNotifications(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error) {
	return l.Select(ctx, q)
}

// Subscribe streams the notifications after the position (all of them from
// recorder.Start()) with the
// given topics, then each new one as the server records it. The stream
// reconnects by itself (with backoff, from the last id it received) when the
// server is unavailable; other failures are returned by Next.
func (l *LogProxy) Subscribe(ctx context.Context, after recorder.Position, topics []string) (*Subscription, error) {
	return l.subscribe(ctx, after, topics, true)
}

// subscribe opens a stream; without reconnect, the stream ends with the
// first failure (the follow runtime reconnects by itself).
func (l *LogProxy) subscribe(ctx context.Context, after recorder.Position, topics []string, reconnect bool) (*Subscription, error) {
	if l.c.closed.Load() {
		return nil, fmt.Errorf("grpcapp: SubscribeNotifications: %w", ErrClientClosed)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Subscription{c: l.c, ctx: sctx, cancel: cancel, topics: topics, ch: make(chan []recorder.Notification, 4), reconnect: reconnect, after: after}
	go s.pump()
	return s, nil
}

// Subscription is a remote notification stream; it satisfies
// recorder.Subscription.
type Subscription struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	topics []string
	after  recorder.Position // after the last id received, owned by pump
	ch     chan []recorder.Notification
	err    error // the pump's terminal error, set before ch closes
	buf    []recorder.Notification
	// reconnect makes the pump open the stream again when the server is
	// unavailable.
	reconnect bool
}

var _ recorder.Subscription = (*Subscription)(nil)

func (s *Subscription) pump() {
	defer close(s.ch)
	for n := 1; ; n++ {
		stream, err := s.c.rpc.SubscribeNotifications(s.ctx, &pb.SubscribeRequest{After: optionalInt(s.after.ID()), Topics: s.topics, Packed: true}, grpc.WaitForReady(s.reconnect), grpc.ForceCodecV2(clientCodec{protoCodec}))
		if err == nil {
			for {
				var b *pb.NotificationBatch
				if b, err = stream.Recv(); err != nil {
					break
				}
				n = 1
				var ns []recorder.Notification
				if p := b.GetPacked(); p != nil {
					if ns, err = unpack(p); err != nil {
						s.err = fmt.Errorf("grpcapp: SubscribeNotifications: %w", err)
						return
					}
				} else {
					ns = fromPB(b.GetNotifications())
				}
				if len(ns) > 0 {
					s.after = recorder.After(ns[len(ns)-1].ID)
					select {
					case s.ch <- ns:
					case <-s.ctx.Done():
						return
					}
				}
			}
		}
		if s.ctx.Err() != nil {
			return
		}
		if !s.reconnect || !errors.Is(err, io.EOF) && status.Code(err) != codes.Unavailable && status.Code(err) != codes.Canceled {
			if !errors.Is(err, io.EOF) {
				s.err = fromStatus(s.ctx, err, "SubscribeNotifications")
			}
			return
		}
		if !ctxtime.Sleep(s.ctx, s.c.backoff(n)) {
			return
		}
	}
}

// NextBatch returns the notifications that have arrived, at least one,
// blocking until then.
func (s *Subscription) NextBatch(ctx context.Context) ([]recorder.Notification, error) {
	if len(s.buf) > 0 {
		ns := s.buf
		s.buf = nil
		return ns, nil
	}
	select {
	case ns, ok := <-s.ch:
		if !ok {
			return nil, s.endErr()
		}
		return ns, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Next returns the next notification, blocking until there is one.
func (s *Subscription) Next(ctx context.Context) (recorder.Notification, error) {
	for len(s.buf) == 0 {
		select {
		case ms, ok := <-s.ch:
			if !ok {
				return recorder.Notification{}, s.endErr()
			}
			s.buf = ms
		case <-ctx.Done():
			return recorder.Notification{}, ctx.Err()
		}
	}
	m := s.buf[0]
	s.buf = s.buf[1:]
	return m, nil
}

func (s *Subscription) endErr() error {
	if s.err != nil {
		return s.err
	}
	return recorder.ErrSubscriptionClosed
}

// Close ends the stream; it is idempotent.
func (s *Subscription) Close() error {
	s.cancel()
	return nil
}
