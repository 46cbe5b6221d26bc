package grpcapp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/grpcapp/pb"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Kinds of served members, as Status reports them.
const (
	KindApplication = "application"
	KindProjection  = "projection"
)

// ErrNotProjection is returned by Rebuild on a server that serves an
// application: a process application's events cannot be unrecorded, so it
// is never rebuilt.
var ErrNotProjection = errors.New("grpcapp: only a projection can be rebuilt; a process application's recorded events cannot be undone")

// progress is what a server serves Status, Wait and Rebuild from: the
// followers of its application, or its projection.
type progress interface {
	Status(ctx context.Context) []follow.Status
	Wait(ctx context.Context, upstream string, notificationID int64, timeout time.Duration) error
	Rebuild(ctx context.Context) error
}

// RemoteStatus is what a server reports of itself.
type RemoteStatus struct {
	Name string
	// Kind is KindApplication or KindProjection.
	Kind string
	// Head is the served application's last notification id.
	Head    int64
	HasHead bool
	// SparseIDs says that ids are positions (EventStoreDB), not counts.
	SparseIDs bool
	// Upstreams has one line per upstream followed.
	Upstreams []follow.Status
}

func (h *handler) Status(ctx context.Context, req *pb.StatusRequest) (*pb.StatusReply, error) {
	r := &pb.StatusReply{Name: h.s.name, Kind: h.s.kind}
	if rec := h.s.app.Recorder(); rec != nil {
		head, ok, err := rec.MaxNotificationID(ctx)
		if err != nil {
			return nil, toStatus(err, "Status")
		}
		if ok {
			r.Head = &head
		}
		if s, ok := rec.(interface{ SparseNotificationIDs() bool }); ok {
			r.SparseIds = s.SparseNotificationIDs()
		}
	}
	if h.s.progress != nil && !req.GetHeadOnly() {
		for _, st := range h.s.progress.Status(ctx) {
			r.Upstreams = append(r.Upstreams, statusToPB(st))
		}
	}
	return r, nil
}

func (h *handler) Wait(ctx context.Context, req *pb.WaitRequest) (*pb.WaitReply, error) {
	if h.s.progress == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%s follows nothing: there is nothing to wait for", h.s.name)
	}
	timeout := time.Duration(req.GetTimeoutMillis()) * time.Millisecond
	if timeout <= 0 {
		return nil, toStatus(fmt.Errorf("%w: Wait needs a positive timeout", eventsourcing.ErrArgument), "Wait")
	}
	err := h.s.progress.Wait(ctx, req.GetUpstream(), req.GetNotificationId(), timeout)
	switch {
	case err == nil:
		return &pb.WaitReply{}, nil
	case errors.Is(err, recorder.ErrTimeout):
		return nil, status.Errorf(codes.DeadlineExceeded, "%s has not reached %s#%d within %v", h.s.name, req.GetUpstream(), req.GetNotificationId(), timeout)
	}
	return nil, toStatus(err, "Wait")
}

func (h *handler) Rebuild(ctx context.Context, _ *pb.RebuildRequest) (*pb.RebuildReply, error) {
	if h.s.kind != KindProjection || h.s.progress == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%s: %v", h.s.name, ErrNotProjection)
	}
	if err := h.s.progress.Rebuild(ctx); err != nil {
		return nil, toStatus(err, "Rebuild")
	}
	h.s.logger.Info("projection rebuild started")
	return &pb.RebuildReply{}, nil
}

func optionalInt(v int64, ok bool) *int64 {
	if !ok {
		return nil
	}
	return &v
}

func statusToPB(s follow.Status) *pb.UpstreamStatus {
	m := &pb.UpstreamStatus{
		Follower: s.Follower, Upstream: s.Upstream, State: s.State.String(),
		Position: optionalInt(s.Position, s.HasPosition), Head: optionalInt(s.Head, s.HasHead),
		Lag: s.Lag, LagUnit: string(s.LagUnit), Rate: s.Rate, Processed: s.Processed, Subscriptions: s.Subscriptions,
	}
	if s.Err != nil {
		m.Error = s.Err.Error()
	}
	for _, d := range s.DeadLetters {
		m.DeadLetters = append(m.DeadLetters, &pb.DeadLetter{
			NotificationId: d.NotificationID, OriginatorId: d.OriginatorID, OriginatorVersion: d.OriginatorVersion,
			Topic: d.Topic, Error: d.Err, AtUnixNano: d.At.UnixNano(),
		})
	}
	return m
}

func statusFromPB(m *pb.UpstreamStatus) follow.Status {
	st, _ := follow.ParseState(m.GetState())
	s := follow.Status{
		Follower: m.GetFollower(), Upstream: m.GetUpstream(), State: st,
		Position: m.GetPosition(), HasPosition: m.Position != nil, Head: m.GetHead(), HasHead: m.Head != nil,
		Lag: m.GetLag(), LagUnit: follow.Unit(m.GetLagUnit()), Rate: m.GetRate(), Processed: m.GetProcessed(),
		Subscriptions: m.GetSubscriptions(),
	}
	if e := m.GetError(); e != "" {
		s.Err = errors.New(e)
	}
	for _, d := range m.GetDeadLetters() {
		s.DeadLetters = append(s.DeadLetters, follow.DeadLetter{
			NotificationID: d.GetNotificationId(), OriginatorID: d.GetOriginatorId(), OriginatorVersion: d.GetOriginatorVersion(),
			Topic: d.GetTopic(), Err: d.GetError(), At: time.Unix(0, d.GetAtUnixNano()),
		})
	}
	return s
}

// Status asks the server for its status (a query: retried).
func (c *Client) Status(ctx context.Context) (RemoteStatus, error) {
	return c.status(ctx, false)
}

func (c *Client) status(ctx context.Context, headOnly bool) (RemoteStatus, error) {
	var r *pb.StatusReply
	err := c.retry(ctx, "Status", true, func(ctx context.Context) (err error) {
		r, err = c.rpc.Status(ctx, &pb.StatusRequest{HeadOnly: headOnly})
		return err
	})
	if err != nil {
		return RemoteStatus{}, err
	}
	out := RemoteStatus{Name: r.GetName(), Kind: r.GetKind(), Head: r.GetHead(), HasHead: r.Head != nil, SparseIDs: r.GetSparseIds()}
	for _, u := range r.GetUpstreams() {
		out.Upstreams = append(out.Upstreams, statusFromPB(u))
	}
	return out, nil
}

// Wait returns when the server's follower or projection has processed the
// upstream's notification id; an error satisfying errors.Is(err,
// recorder.ErrTimeout) after timeout.
func (c *Client) Wait(ctx context.Context, upstream string, notificationID int64, timeout time.Duration) error {
	req := &pb.WaitRequest{Upstream: upstream, NotificationId: notificationID, TimeoutMillis: max(timeout.Milliseconds(), 1)}
	if c.closed.Load() {
		return fmt.Errorf("grpcapp: Wait: %w", ErrClientClosed)
	}
	// Not retried, and not cut by the call timeout: the call lasts as long
	// as the wait, which the server bounds.
	_, err := c.rpc.Wait(ctx, req, grpc.WaitForReady(true))
	if err == nil {
		return nil
	}
	if status.Code(err) == codes.DeadlineExceeded && ctx.Err() == nil {
		return fmt.Errorf("grpcapp: Wait: %s: %w", status.Convert(err).Message(), recorder.ErrTimeout)
	}
	return c.mapErr(ctx, err, "Wait")
}

// Rebuild asks a projection's server to rebuild its view (a command: never
// re-sent). A server of an application refuses with ErrNotProjection.
func (c *Client) Rebuild(ctx context.Context) error {
	err := c.retry(ctx, "Rebuild", false, func(ctx context.Context) error {
		_, err := c.rpc.Rebuild(ctx, &pb.RebuildRequest{})
		return err
	})
	var e *Error
	if errors.As(err, &e) && e.Code == codes.FailedPrecondition {
		return refused{err}
	}
	return err
}

// refused is the server's refusal to rebuild: its message, matching
// ErrNotProjection.
type refused struct{ err error }

func (r refused) Error() string   { return r.err.Error() }
func (r refused) Unwrap() []error { return []error{r.err, ErrNotProjection} }

// Upstreams reports the progress of each upstream the served application
// or projection follows (none when it follows nothing), as Status does; it
// never fails.
func (s *Server) Upstreams(ctx context.Context) ([]follow.Status, error) {
	if s.progress == nil {
		return nil, nil
	}
	return s.progress.Status(ctx), nil
}

// Upstreams reports the progress of every follower and projection of the
// system, read from each member's server (Status). The members that do not
// answer are named in the error; the statuses of the others are returned
// with it.
func (r *Runner) Upstreams(ctx context.Context) ([]follow.Status, error) {
	r.mu.Lock()
	clients := make(map[string]*Client, len(r.clients))
	for name, c := range r.clients {
		clients[name] = c
	}
	r.mu.Unlock()
	var out []follow.Status
	var errs []error
	for _, name := range r.members() {
		c, ok := clients[name]
		if !ok {
			if r.lc.Started() {
				errs = append(errs, fmt.Errorf("%s: not connected", name))
			}
			continue
		}
		st, err := c.Status(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s does not answer: %w", name, err))
			continue
		}
		out = append(out, st.Upstreams...)
	}
	return out, errors.Join(errs...)
}
