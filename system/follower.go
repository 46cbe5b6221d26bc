package system

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// NotificationSource is where a follower reads a leader's notifications: the
// leader's application recorder in process, or a remote leader's client.
type NotificationSource interface {
	SelectNotifications(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error)
}

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
type ProcessingError struct {
	Follower       string
	Leader         string
	NotificationID int64
	Err            error
}

func (e *ProcessingError) Error() string {
	return fmt.Sprintf("%s processing notification %d of %s: %v", e.Follower, e.NotificationID, e.Leader, e.Err)
}

func (e *ProcessingError) Unwrap() error { return e.Err }

// PullingError reports that a follower could not read a leader's notifications
// or its own tracking position.
type PullingError struct {
	Follower, Leader string
	Err              error
}

func (e *PullingError) Error() string {
	return fmt.Sprintf("%s pulling notifications of %s: %v", e.Follower, e.Leader, e.Err)
}

func (e *PullingError) Unwrap() error { return e.Err }

// Upstream is a leader as a follower sees it.
type Upstream struct {
	// Name is the leader's application name; tracking records carry it.
	Name string
	// Source reads the leader's notifications.
	Source NotificationSource
	// Mapper decodes the leader's stored events. Build it with LeaderMapper so
	// that it is configured under the leader's name (its cipher key and
	// compressor) and knows the leader's event types.
	Mapper *eventsourcing.Mapper
	// Topics, when not empty, restricts the pulled notifications.
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

// DefaultPageSize is how many notifications a follower pulls at once.
const DefaultPageSize = 100

// Follower pulls its leaders' notifications and processes them with its
// application's policy, exactly once. It is safe for concurrent use: pulls and
// processing of one follower are serialised.
type Follower struct {
	app      ProcessApplication
	process  recorder.ProcessRecorder
	pageSize int

	mu       sync.Mutex // serialises processing
	leadersM sync.RWMutex
	leaders  []*Upstream
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

// SetPageSize sets how many notifications one pull reads at once (at least 1).
func (f *Follower) SetPageSize(n int) { f.pageSize = max(n, 1) }

// Follow adds a leader. Following a name twice replaces the first upstream.
func (f *Follower) Follow(u Upstream) error {
	if u.Name == "" || u.Source == nil || u.Mapper == nil {
		return fmt.Errorf("%w: follower %s: upstream needs a name, a source and a mapper", ErrSystem, f.app.Name())
	}
	u.Topics = slices.Clone(u.Topics)
	f.leadersM.Lock()
	defer f.leadersM.Unlock()
	for i, l := range f.leaders {
		if l.Name == u.Name {
			f.leaders[i] = &u
			return nil
		}
	}
	f.leaders = append(f.leaders, &u)
	return nil
}

// Leaders returns the names of the leaders followed.
func (f *Follower) Leaders() []string {
	f.leadersM.RLock()
	defer f.leadersM.RUnlock()
	names := make([]string, len(f.leaders))
	for i, l := range f.leaders {
		names[i] = l.Name
	}
	return names
}

func (f *Follower) upstream(name string) (*Upstream, error) {
	f.leadersM.RLock()
	defer f.leadersM.RUnlock()
	for _, l := range f.leaders {
		if l.Name == name {
			return l, nil
		}
	}
	return nil, fmt.Errorf("%w: %s does not follow %q", ErrNotFollowing, f.app.Name(), name)
}

// PullAndProcess processes the leader's notifications after the follower's
// last tracked position, page by page, until it has caught up. It returns the
// number of notifications processed. It stops at the first failure, which is
// a *ProcessingError or *PullingError; everything before it stays recorded.
func (f *Follower) PullAndProcess(ctx context.Context, leader string) (int, error) {
	u, err := f.upstream(leader)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	last, ok, err := f.process.MaxTrackingID(ctx, leader)
	if err != nil {
		return 0, &PullingError{Follower: f.app.Name(), Leader: leader, Err: err}
	}
	q := recorder.NotificationQuery{ExclusiveStart: true, Limit: f.pageSize, Topics: u.Topics}
	if ok {
		q.Start = &last
	}
	done := 0
	for {
		page, err := u.Source.SelectNotifications(ctx, q)
		if err != nil {
			return done, &PullingError{Follower: f.app.Name(), Leader: leader, Err: err}
		}
		for _, n := range page {
			// The filter is re-checked: a remote source may ignore it.
			if recorder.MatchTopic(u.Topics, n.Topic) {
				if err := f.processNotification(ctx, u, n); err != nil {
					return done, err
				}
				done++
			}
			id := n.ID
			q.Start = &id
		}
		if len(page) < q.Limit {
			return done, nil
		}
	}
}

func (f *Follower) processNotification(ctx context.Context, u *Upstream, n recorder.Notification) error {
	e, err := u.Mapper.ToEvent(n.StoredEvent)
	if err != nil {
		return &ProcessingError{Follower: f.app.Name(), Leader: u.Name, NotificationID: n.ID, Err: err}
	}
	return f.processEvent(ctx, e, recorder.Tracking{ApplicationName: u.Name, NotificationID: n.ID})
}

// ProcessEvent runs the policy on one upstream event and records what it
// collected together with the tracking record, atomically. Processing a
// position at or below the last tracked one fails with recorder.ErrIntegrity
// and records nothing.
func (f *Follower) ProcessEvent(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.processEvent(ctx, e, t)
}

func (f *Follower) processEvent(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) error {
	p := &ProcessingEvent{Tracking: t}
	fail := func(err error) error {
		return &ProcessingError{Follower: f.app.Name(), Leader: t.ApplicationName, NotificationID: t.NotificationID, Err: err}
	}
	if err := f.app.Policy(ctx, e, p); err != nil {
		return fail(fmt.Errorf("policy: %w", err))
	}
	recs, err := f.app.SaveBatch(ctx, eventsourcing.Batch{Roots: p.roots, Events: p.events, Tracking: &t})
	if err != nil {
		if len(recs) > 0 {
			// Recorded, but a save hook (a downstream follower run in this
			// goroutine by the single-threaded runner) failed: that error is
			// the downstream's own, so pass it on unwrapped.
			return err
		}
		return fail(err)
	}
	return nil
}
