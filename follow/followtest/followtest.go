// Package followtest is the conformance suite of the subscription runtime
// (package follow): every source of notifications runs it from its own
// tests, so that a follower behaves alike on all of them. The suite writes
// its own events to a fresh upstream application, follows it into a view,
// and checks that every event is processed exactly once and in order: while
// catching up and live, under racing writers, across dropped subscriptions,
// restarts, resets, source errors and failed batches, with ignored and
// filtered events, and when a handler fails or stops its runner. It also
// checks that a trickle of events is followed through one subscription, and
// what Status reports. RunCrash does the same through a crash, for sources
// and views kept in files: a follower process is killed with SIGKILL in the
// middle of catching up and started again.
//
// A source's whole conformance test:
//
//	var harness = followtest.Harness{
//		Name: "sqlite",
//		Open: func(tb testing.TB, opts eventsourcing.Options) followtest.Upstream {
//			env := map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(tb.TempDir(), "up.db")}
//			return followtest.Upstream{App: followtest.NewApplication(tb, opts, env)}
//		},
//	}
//
//	func TestFollow(t *testing.T)      { followtest.Run(t, harness) }
//	func BenchmarkFollow(b *testing.B) { followtest.Bench(b, harness) }
//
// The suite asserts behaviour only, never durations: its waits are
// generous (Timeout) so that a slow, shared machine passes; speed is
// measured by Bench.
package followtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Timeout bounds every wait of the suite. It is far above what any source
// needs, so that only a follower that never gets there fails.
const Timeout = 30 * time.Second

// Harness is one source under test.
type Harness struct {
	// Name names the source.
	Name string
	// Open returns a fresh, empty upstream: an application built with
	// opts, whose Name, Types and Logger the suite sets (the harness adds
	// its persistence settings: Env, Lookup or Factory), and how a
	// follower reads it. The harness releases what it built with
	// tb.Cleanup.
	Open func(tb testing.TB, opts eventsourcing.Options) Upstream
	// View returns a fresh, empty view; nil means NewMemoryView.
	View func(tb testing.TB) View
}

// Upstream is an application under test and how a follower reads it.
type Upstream struct {
	// App is the upstream application; the suite writes through it.
	App *eventsourcing.Application
	// Source is what the follower follows; nil means App.Recorder().
	Source follow.Source
	// Drop breaks every live subscription of Source from the outside (a
	// server restarted on the same address and data, its connections cut)
	// and returns when the upstream accepts writes again. Nil: the suite wraps Source in a
	// source whose subscriptions it ends itself.
	Drop func(tb testing.TB)
	// Configure, when set, changes the configuration of every follower of
	// Source, as its real users do (grpcapp.Retryable for a remote source).
	Configure func(*follow.Config)
}

// NewApplication builds a harness's upstream application with opts and the
// settings env (none are read from the process environment), and closes it
// when tb ends.
func NewApplication(tb testing.TB, opts eventsourcing.Options, env map[string]string) *eventsourcing.Application {
	tb.Helper()
	opts.Env, opts.Lookup = env, eventsourcing.NoEnvironment
	app, err := eventsourcing.NewApplication(tb.Context(), opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = app.Close() })
	return app
}

// Seen is what the suite's handler records of one event.
type Seen struct {
	NotificationID int64
	Seq            int
}

// View is where the suite's handler records what it sees: a tracking
// recorder whose Record writes an event's Seen and its tracking record in
// one atomic write. A View that implements follow.Batcher is batched; one
// that implements projection.Rebuilder is also reset under a running
// follower.
type View interface {
	projection.View
	Record(ctx context.Context, t recorder.Tracking, s Seen) error
	// Seen returns what was recorded, in notification order.
	Seen(ctx context.Context) ([]Seen, error)
}

// Rows is what database/sql's and pgx's query results have in common.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanSeen reads an SQL view's rows of (notification id, seq).
func ScanSeen(rows Rows) ([]Seen, error) {
	var out []Seen
	for rows.Next() {
		var s Seen
		if err := rows.Scan(&s.NotificationID, &s.Seq); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// NewMemoryView returns the default view: a projection.MemoryView.
func NewMemoryView() View { return &memoryView{MemoryView: projection.NewMemoryView()} }

type memoryView struct {
	*projection.MemoryView
	seen []Seen
}

func (v *memoryView) Record(ctx context.Context, t recorder.Tracking, s Seen) error {
	return v.Update(ctx, t, func() error { v.seen = append(v.seen, s); return nil })
}

// Reset implements projection.Rebuilder.
func (v *memoryView) Reset(context.Context) error {
	v.ResetTracking(func() { v.seen = nil })
	return nil
}

func (v *memoryView) Seen(context.Context) ([]Seen, error) {
	var out []Seen
	v.Read(func() { out = slices.Clone(v.seen) })
	return out, nil
}

// The suite's aggregate and events. Every write creates one Item with one
// event, so that racing writers never conflict.
type (
	// Item is the suite's aggregate.
	Item struct{ eventsourcing.Aggregate }
	// Wanted is recorded by the suite's handler.
	Wanted struct{ Seq int }
	// Skipped is ignored by the suite's handler (recorded=false).
	Skipped struct{ Seq int }
	// Filtered is left out by the topic filter of the cases that filter.
	Filtered struct{ Seq int }
	// Poison makes the suite's handler fail.
	Poison struct{ Seq int }
)

// Topics of the suite's events.
const (
	TopicItem     = "followtest:Item"
	TopicWanted   = "followtest:Item.Wanted"
	TopicSkipped  = "followtest:Item.Skipped"
	TopicFiltered = "followtest:Item.Filtered"
	TopicPoison   = "followtest:Item.Poison"
)

// Apply implements eventsourcing's aggregate contract; an Item keeps no
// state of its own.
func (*Item) Apply(any) {}

// InitialVersion numbers an Item's events from 0, which every backend
// accepts (EventStoreDB's stream revisions start at 0).
func (*Item) InitialVersion() int64 { return 0 }

// Types returns the registry of the suite's aggregate and events.
func Types() *eventsourcing.Types {
	types := eventsourcing.NewTypes()
	eventsourcing.MustRegister[Item](types, TopicItem)
	eventsourcing.MustRegister[Wanted](types, TopicWanted)
	eventsourcing.MustRegister[Skipped](types, TopicSkipped)
	eventsourcing.MustRegister[Filtered](types, TopicFiltered)
	eventsourcing.MustRegister[Poison](types, TopicPoison)
	return types
}

// errPoison is the suite's handler's failure.
var errPoison = errors.New("followtest: poison event")

// handler records Wanted events in the view, ignores Skipped ones and
// fails on Poison. hook, when set, runs first.
type handler struct {
	view     View
	hook     func(ctx context.Context, e eventsourcing.Event)
	mu       sync.Mutex
	filtered int // Filtered events handed over, which a filtering follower never does
}

func (h *handler) Handle(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) (bool, error) {
	if h.hook != nil {
		h.hook(ctx, e)
	}
	switch d := e.Data.(type) {
	case Wanted:
		return true, h.view.Record(ctx, t, Seen{NotificationID: t.NotificationID, Seq: d.Seq})
	case Poison:
		return false, errPoison
	case Filtered:
		h.mu.Lock()
		h.filtered++
		h.mu.Unlock()
	}
	return false, nil
}

func (h *handler) filteredSeen() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.filtered
}

// The projection.Projection of the runner cases.
type proj struct {
	h      *handler
	topics []string
}

func (p proj) Name() string     { return "FollowTest" }
func (p proj) Topics() []string { return p.topics }
func (p proj) Process(ctx context.Context, e eventsourcing.Event, t recorder.Tracking) (bool, error) {
	return p.h.Handle(ctx, e, t)
}

// live starts a follower into h and waits until it is live.
func (fx *fixture) live(h follow.Handler, change ...func(*follow.Config)) *follow.Follower {
	fx.tb.Helper()
	f := fx.follower(h, change...)
	fx.run(f)
	fx.waitLive(f)
	return f
}

// fixture is one case's upstream, source and view.
type fixture struct {
	tb    testing.TB
	app   *eventsourcing.Application
	src   *CountingSource
	view  View
	drop  func(tb testing.TB)
	drops *DroppingSource // nil when the harness drops
	log   *slog.Logger
	// configure is the harness's change to a follower's configuration.
	configure func(*follow.Config)
}

func newFixture(tb testing.TB, h Harness, logger *slog.Logger) *fixture {
	tb.Helper()
	up := h.Open(tb, eventsourcing.Options{Name: "FollowTestUpstream", Types: Types(), Logger: logger})
	require.NotNil(tb, up.App, "the harness returned no application")
	src := up.Source
	if src == nil {
		src = up.App.Recorder()
	}
	fx := &fixture{tb: tb, app: up.App, drop: up.Drop, log: logger, configure: up.Configure}
	if fx.drop == nil {
		fx.drops = NewDroppingSource(src)
		src = fx.drops
		fx.drop = func(testing.TB) { fx.drops.Drop() }
	}
	fx.src = NewCountingSource(src)
	if h.View != nil {
		fx.view = h.View(tb)
	} else {
		fx.view = NewMemoryView()
	}
	return fx
}

// testLogger writes to the test's output (shown when it fails, or with -v).
func testLogger(tb testing.TB) *slog.Logger {
	if t, ok := tb.(interface{ Output() io.Writer }); ok {
		return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return discardLogger()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// config is a follower of the fixture's source into h, with short
// backoffs so that a resubscription is quick.
func (fx *fixture) config(h follow.Handler, change ...func(*follow.Config)) follow.Config {
	c := follow.Config{
		Name: "FollowTest", Upstream: fx.app.Name(), Mapper: fx.app.Mapper(), Handler: h, Tracker: fx.view,
	}
	fx.adapt(&c)
	for _, fn := range change {
		fn(&c)
	}
	return c
}

// adapt makes c follow the fixture's source as the harness configures it.
func (fx *fixture) adapt(c *follow.Config) {
	c.Source, c.Logger, c.BackoffMin, c.BackoffMax = fx.src, fx.log, 10*time.Millisecond, 200*time.Millisecond
	if fx.configure != nil {
		fx.configure(c)
	}
}

func (fx *fixture) follower(h follow.Handler, change ...func(*follow.Config)) *follow.Follower {
	fx.tb.Helper()
	f, err := follow.New(fx.config(h, change...))
	require.NoError(fx.tb, err)
	return f
}

// run runs f until the case ends; the returned channel gives Run's result.
func (fx *fixture) run(f *follow.Follower) <-chan error {
	result, _ := fx.runStoppable(f)
	return result
}

// runStoppable is run, with a stop that ends Run and waits for it.
func (fx *fixture) runStoppable(f *follow.Follower) (result <-chan error, stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(fx.tb.Context()))
	done := make(chan struct{})
	res := make(chan error, 1)
	go func() {
		defer close(done)
		res <- f.Run(ctx)
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(Timeout):
			fx.tb.Errorf("the follower did not return from Run within %v of its context ending", Timeout)
		}
	}
	fx.tb.Cleanup(stop)
	return res, stop
}

// waitLive waits until f has a live subscription open.
func (fx *fixture) waitLive(f *follow.Follower) {
	fx.tb.Helper()
	fx.eventually("the follower to be live", func() bool { return f.State() == follow.Live })
}

// settled polls f's Status until cond holds and returns it: Status
// catches up with the view a moment after the view's write (the position
// and counters are published once the handler has returned).
func (fx *fixture) settled(f *follow.Follower, what string, cond func(follow.Status) bool) follow.Status {
	fx.tb.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		st := f.Status(fx.tb.Context())
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			fx.tb.Fatalf("waited %v for %s; Status: %s", Timeout, what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// eventually polls cond until it holds, failing after Timeout.
func (fx *fixture) eventually(what string, cond func() bool) {
	fx.tb.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			fx.tb.Fatalf("waited %v for %s", Timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// write saves one new Item created by data and returns its notification id.
func (fx *fixture) write(ctx context.Context, data any) int64 {
	fx.tb.Helper()
	id, err := fx.save(ctx, data)
	require.NoError(fx.tb, err)
	return id
}

func (fx *fixture) save(ctx context.Context, data any) (int64, error) {
	item := new(Item)
	eventsourcing.Create(item, eventsourcing.NewID(), data)
	recs, err := fx.app.Save(ctx, item)
	if err != nil {
		return 0, err
	}
	if len(recs) != 1 || recs[0].NotificationID == 0 {
		return 0, fmt.Errorf("followtest: Save returned %d recordings without a notification id: %+v", len(recs), recs)
	}
	return recs[0].NotificationID, nil
}

// writeRetrying is save for an upstream that may be restarting: a failed
// save is tried again for up to Timeout (a new Item; the cases compare the
// view with the log, so a save that failed but was recorded counts as
// written). It may run on any goroutine.
func (fx *fixture) writeRetrying(ctx context.Context, data any) (int64, error) {
	deadline := time.Now().Add(Timeout)
	for {
		id, err := fx.save(ctx, data)
		if err == nil || time.Now().After(deadline) {
			return id, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeN writes Wanted events with Seq from..from+n-1 and returns their ids.
func (fx *fixture) writeN(ctx context.Context, from, n int) []int64 {
	fx.tb.Helper()
	ids := make([]int64, n)
	for i := range n {
		ids[i] = fx.write(ctx, Wanted{Seq: from + i})
	}
	return ids
}

// wait waits until the view's position has reached id.
func (fx *fixture) wait(ctx context.Context, id int64) {
	fx.tb.Helper()
	require.NoError(fx.tb, fx.view.Wait(ctx, fx.app.Name(), id, Timeout), "waiting for notification %d", id)
}

func (fx *fixture) seen(ctx context.Context) []Seen {
	fx.tb.Helper()
	s, err := fx.view.Seen(ctx)
	require.NoError(fx.tb, err)
	return s
}

// logIDs returns the ids of the upstream's notifications with the topics.
func (fx *fixture) logIDs(ctx context.Context, topics ...string) []int64 {
	fx.tb.Helper()
	var out []int64
	q := recorder.NotificationQuery{Limit: 1000}
	for {
		page, err := fx.app.Recorder().SelectNotifications(ctx, q)
		require.NoError(fx.tb, err)
		for _, n := range page {
			if slices.Contains(topics, n.Topic) {
				out = append(out, n.ID)
			}
		}
		if len(page) < q.Limit {
			return out
		}
		q.After = recorder.After(page[len(page)-1].ID)
	}
}

// requireExactlyOnce checks that the view saw every Wanted notification of
// the log once, in the log's order, and nothing else.
func (fx *fixture) requireExactlyOnce(ctx context.Context) []Seen {
	fx.tb.Helper()
	seen := fx.seen(ctx)
	got := make([]int64, len(seen))
	for i, s := range seen {
		got[i] = s.NotificationID
	}
	want := fx.logIDs(ctx, TopicWanted)
	require.Equal(fx.tb, len(want), len(got), "as many events processed as written")
	require.Equal(fx.tb, want, got, "every Wanted event processed once, in the log's order")
	return seen
}

func seqs(seen []Seen) []int {
	out := make([]int, len(seen))
	for i, s := range seen {
		out[i] = s.Seq
	}
	return out
}

func count(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}
