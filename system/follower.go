package system

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// ProcessingEvent collects what a policy decides while processing one upstream
// event. Its contents and the tracking record are recorded in one atomic write.
type ProcessingEvent struct {
	// Tracking is the position of the upstream event being processed.
	Tracking recorder.Tracking

	roots  []eventsourcing.Root
	events []eventsourcing.Event
}

// Collect adds aggregates whose pending events are to be recorded.
func (p *ProcessingEvent) Collect(roots ...eventsourcing.Root) { p.roots = append(p.roots, roots...) }

// CollectEvents adds bare events to be recorded.
func (p *ProcessingEvent) CollectEvents(events ...eventsourcing.Event) {
	p.events = append(p.events, events...)
}

// ProcessingError reports that a follower failed to process an upstream
// notification: its policy failed, its leader's event could not be decoded, or
// the atomic write failed (errors.Is(err, recorder.ErrIntegrity) when the
// position was already processed). Nothing of that notification was recorded.
type ProcessingError = follow.ProcessingError

// Upstream is a leader as a follower sees it.
type Upstream struct {
	// Name is the leader's application name; tracking records carry it.
	Name string
	// Source reads the leader's notifications: its application recorder in
	// process, its remote log over gRPC.
	Source follow.Source
	// Mapper decodes the leader's stored events. Build it with LeaderMapper so
	// that it is configured under the leader's name (its cipher key and
	// compressor) and knows the leader's event types.
	Mapper *eventsourcing.Mapper
	// Topics, when not empty, restricts the notifications read.
	Topics []string
}

// LeaderMapper returns a mapper that decodes a leader's events: the leader's
// types, with the follower's settings read under the leader's name, so that
// DOGSCHOOL_CIPHER_KEY decodes DogSchool's events in any follower.
func LeaderMapper(follower Application, leaderName string, leaderTypes *eventsourcing.Types) (*eventsourcing.Mapper, error) {
	m, err := eventsourcing.NewMapperFromEnv(leaderTypes, follower.Env().WithName(leaderName))
	if err != nil {
		return nil, fmt.Errorf("mapper of %s for %s: %w", leaderName, follower.Name(), err)
	}
	return m, nil
}

// PolicyTopics is implemented by process applications whose policy makes
// something only of events of the topics it returns. A follower then reads
// its leaders' notifications of other topics without decoding them or
// calling the policy, and records their positions as it records those of
// events the policy ignores, coalesced. (FollowTopics instead keeps them
// from being read at all.)
type PolicyTopics interface {
	PolicyTopics() []string
}

// DefaultPageSize is how many notifications a follower reads at once.
const DefaultPageSize = 100

// Follower processes its leaders' notifications with its application's
// policy, exactly once: one follow.Follower per leader, whose handler runs
// the policy and records what it collected with the tracking record. It is
// safe for concurrent use.
type Follower struct {
	app      ProcessApplication
	process  recorder.ProcessRecorder
	pageSize int
	opts     []func(*follow.Config)

	mu      sync.RWMutex
	leaders []*follow.Follower
}

// NewFollower returns a follower for app, which must record through a process
// recorder (eventsourcing.Options.Process).
func NewFollower(app ProcessApplication) (*Follower, error) {
	pr, ok := app.ProcessRecorder()
	if !ok {
		return nil, fmt.Errorf("follower %s: %w (build it with Options.Process)", app.Name(), eventsourcing.ErrProcessRecorder)
	}
	return &Follower{app: app, process: pr, pageSize: DefaultPageSize}, nil
}

// App returns the follower's application.
func (f *Follower) App() ProcessApplication { return f.app }

// SetPageSize sets how many notifications one read takes at once (at least
// 1), for leaders followed after the call.
func (f *Follower) SetPageSize(n int) { f.pageSize = max(n, 1) }

// Configure adds a change to the follow.Config of leaders followed after
// the call (backoff, checkpoints, the failure policy, a logger).
func (f *Follower) Configure(fn func(*follow.Config)) { f.opts = append(f.opts, fn) }

// Follow adds a leader. Following a name twice replaces the first upstream.
func (f *Follower) Follow(u Upstream) error {
	if u.Name == "" || u.Source == nil || u.Mapper == nil {
		return fmt.Errorf("%w: follower %s: upstream needs a name, a source and a mapper", ErrSystem, f.app.Name())
	}
	cfg := follow.Config{
		Name: f.app.Name(), Upstream: u.Name, Source: u.Source, Mapper: u.Mapper,
		Handler: policyHandler{f}, Tracker: f.process, Topics: slices.Clone(u.Topics),
		PageSize: f.pageSize, Logger: f.app.Logger(),
	}
	if pt, ok := f.app.(PolicyTopics); ok {
		cfg.HandledTopics = pt.PolicyTopics()
	}
	for _, o := range f.opts {
		o(&cfg)
	}
	ff, err := follow.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: follower %s: %w", ErrSystem, f.app.Name(), err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, l := range f.leaders {
		if l.Upstream() == u.Name {
			f.leaders[i] = ff
			return nil
		}
	}
	f.leaders = append(f.leaders, ff)
	return nil
}

// Leaders returns the names of the leaders followed.
func (f *Follower) Leaders() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	names := make([]string, len(f.leaders))
	for i, l := range f.leaders {
		names[i] = l.Upstream()
	}
	return names
}

// Upstream returns the follow.Follower of one leader.
func (f *Follower) Upstream(name string) (*follow.Follower, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, l := range f.leaders {
		if l.Upstream() == name {
			return l, nil
		}
	}
	return nil, fmt.Errorf("%w: %s does not follow %q", ErrNotFollowing, f.app.Name(), name)
}

// Status reports the progress of every leader followed.
func (f *Follower) Status(ctx context.Context) []follow.Status {
	f.mu.RLock()
	leaders := slices.Clone(f.leaders)
	f.mu.RUnlock()
	out := make([]follow.Status, len(leaders))
	for i, l := range leaders {
		out[i] = l.Status(ctx)
	}
	return out
}

// PullAndProcess processes the leader's notifications after the follower's
// position, page by page, until it has caught up, and returns how many it
// handed to the policy. It stops at the first failure; everything before it
// stays recorded.
func (f *Follower) PullAndProcess(ctx context.Context, leader string) (int, error) {
	l, err := f.Upstream(leader)
	if err != nil {
		return 0, err
	}
	return l.CatchUp(ctx)
}

// ProcessEvent runs the policy on one upstream event and records what it
// collected together with the tracking record, atomically. Processing a
// position at or below the last tracked one fails with recorder.ErrIntegrity
// and records nothing.
func (f *Follower) ProcessEvent(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) error {
	if _, err := f.process1(ctx, e, t, true); err != nil {
		return &ProcessingError{Follower: f.app.Name(), Upstream: t.ApplicationName, NotificationID: t.NotificationID, Err: err}
	}
	return nil
}

// policyHandler is the follow.Handler of a process application.
type policyHandler struct{ f *Follower }

func (h policyHandler) Handle(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) (bool, error) {
	return h.f.process1(ctx, e, t, false)
}

// process1 runs the policy and, when it collected something (or always,
// with trackAlone), records it with the tracking record.
func (f *Follower) process1(ctx context.Context, e eventsourcing.Event, t recorder.Tracking, trackAlone bool) (bool, error) {
	p := &ProcessingEvent{Tracking: t}
	if err := f.app.Policy(ctx, e, p); err != nil {
		return false, fmt.Errorf("policy: %w", err)
	}
	if len(p.roots) == 0 && len(p.events) == 0 && !trackAlone {
		return false, nil
	}
	recs, err := f.app.SaveBatch(ctx, eventsourcing.Batch{Roots: p.roots, Events: p.events, Tracking: &t})
	if err != nil {
		if len(recs) > 0 {
			// Recorded, but a save hook failed: the position is recorded,
			// and the hook's failure is its own, not this event's.
			f.app.Logger().Warn("save hook failed after a follower recorded", "follower", f.app.Name(), "upstream", t.ApplicationName, "notification_id", t.NotificationID, "error", err)
			return true, nil
		}
		return false, err
	}
	return true, nil
}
