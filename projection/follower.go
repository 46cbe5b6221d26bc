package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// DefaultPageSize is how many notifications a projection reads at once when
// it is behind; with a Batcher view, that is also the largest batch.
const DefaultPageSize = 500

// Option configures how a projection follows its upstream.
type Option func(*follow.Config)

// WithPageSize sets how many notifications are read (and batched) at once.
func WithPageSize(n int) Option { return func(c *follow.Config) { c.PageSize = max(n, 1) } }

// WithSkipFailed makes an event that the projection fails to process (or
// that cannot be decoded) a dead letter instead of stopping the projection:
// its position and error are shown by Status and passed to onSkip (which
// may be nil, or keep it in a table), and the projection moves on. Without
// it, such an event stops the projection.
func WithSkipFailed(onSkip func(ctx context.Context, d follow.DeadLetter) error) Option {
	return func(c *follow.Config) { c.SkipFailed, c.OnSkip = true, onSkip }
}

// WithFollowConfig changes any setting of the follower (checkpoints,
// backoff, logger).
func WithFollowConfig(fn func(*follow.Config)) Option { return Option(fn) }

// Follower runs one projection over one upstream: a follow.Follower whose
// handler is the projection and whose tracker is the view. It is what the
// system's runners and the gRPC server run; Runner wraps it with a
// lifecycle for use on its own.
type Follower struct {
	proj     Projection
	view     View
	upstream string
	f        *follow.Follower
}

// NewFollower returns the follower of a projection. upstream names the
// application read (tracking records carry it), src is its log and m
// decodes its events.
func NewFollower(p Projection, view View, upstream string, src follow.Source, m *eventsourcing.Mapper, opts ...Option) (*Follower, error) {
	if p == nil || view == nil {
		return nil, fmt.Errorf("projection: %w: a projection and a view are required", config.ErrConfiguration)
	}
	cfg := follow.Config{
		Name: p.Name(), Upstream: upstream, Source: src, Mapper: m,
		Handler: handler{p}, Tracker: view, Topics: p.Topics(), PageSize: DefaultPageSize,
	}
	for _, o := range opts {
		o(&cfg)
	}
	f, err := follow.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("projection %s: %w", p.Name(), err)
	}
	return &Follower{proj: p, view: view, upstream: upstream, f: f}, nil
}

type handler struct{ p Projection }

func (h handler) Handle(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) (bool, error) {
	return h.p.Process(ctx, e, t)
}

// Name returns the projection's name.
func (f *Follower) Name() string { return f.proj.Name() }

// Upstream returns the name of the application the projection reads.
func (f *Follower) Upstream() string { return f.upstream }

// Projection returns the projection.
func (f *Follower) Projection() Projection { return f.proj }

// View returns the view.
func (f *Follower) View() View { return f.view }

// Follow returns the underlying follower.
func (f *Follower) Follow() *follow.Follower { return f.f }

// Run follows the upstream until ctx ends (nil) or the projection fails.
func (f *Follower) Run(ctx context.Context) error { return f.f.Run(ctx) }

// CatchUp processes what the upstream has recorded so far, and returns.
func (f *Follower) CatchUp(ctx context.Context) (int, error) { return f.f.CatchUp(ctx) }

// Status reports the projection's progress.
func (f *Follower) Status(ctx context.Context) follow.Status { return f.f.Status(ctx) }

// Err returns the error the projection failed with, or nil.
func (f *Follower) Err() error { return f.f.Err() }

// Wait returns when the view has processed (or passed over) the upstream
// notification id; recorder.ErrTimeout after timeout.
func (f *Follower) Wait(ctx context.Context, notificationID int64, timeout time.Duration) error {
	return f.view.Wait(ctx, f.upstream, notificationID, timeout)
}

// Rebuild empties the view through its Reset (the view must implement
// Rebuilder) while no event is being processed, and makes the projection
// read its upstream from the start again. It returns once the view is
// empty; the catch-up runs in the background.
func (f *Follower) Rebuild(ctx context.Context) error {
	r, ok := f.view.(Rebuilder)
	if !ok {
		return fmt.Errorf("projection %s: %w", f.proj.Name(), ErrNotRebuildable)
	}
	err := f.f.Reset(ctx, r.Reset)
	if err != nil {
		return err
	}
	if _, ok, err := f.view.MaxTrackingID(ctx, f.upstream); err != nil || ok {
		return errors.Join(err, fmt.Errorf("projection %s: Reset left a tracking record of %s: %w", f.proj.Name(), f.upstream, recorder.ErrIntegrity))
	}
	return nil
}
