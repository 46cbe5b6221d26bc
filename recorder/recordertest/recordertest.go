// Package recordertest is the conformance suite of the recorder contracts: every
// persistence module runs it from its own tests, so that a module that passes it
// behaves like every other where the contracts say so, and differs only where its
// Capabilities say it lawfully may.
//
// A backend's whole conformance test:
//
//	func TestConformance(t *testing.T) {
//		recordertest.Run(t, recordertest.Factory{
//			Name: "sqlite",
//			Open: func(tb testing.TB) recorder.Factory {
//				env := config.NewEnvFrom("", map[string]string{"SQLITE_DBNAME": filepath.Join(tb.TempDir(), "db")}, nil)
//				f, err := sqlite.Open(tb.Context(), env)
//				require.NoError(tb, err)
//				return f // the suite closes it
//			},
//			Caps: recordertest.DefaultCapabilities(),
//		})
//	}
//
//	func BenchmarkRecorders(b *testing.B) { recordertest.Bench(b, factory) }
//
// The cases follow core.md §4, §5 and §11 and the concurrency cases of
// lessons.md §2. Every error is asserted by kind with errors.Is, never as a bare
// non-nil error, because a conflict that is not recognisable as a conflict is the
// bug this suite exists to catch.
package recordertest

import (
	"context"
	"testing"
	"time"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Capabilities declare the lawful differences between backends. The suite checks
// a capability that is on, and checks that a backend without one refuses clearly
// (or, for the restrictions, that it accepts what others accept).
type Capabilities struct {
	// ContiguousIDs: notification ids are 1, 2, 3... with no gaps (SQL, memory).
	// Off on EventStoreDB, whose ids are commit positions; the suite then checks
	// only that ids strictly increase and never interleave.
	ContiguousIDs bool
	// ExactStartPositions: a notification query's start must be 0 or the id of a
	// record, as on EventStoreDB. Selecting from max+1 may then fail with
	// ErrData instead of returning nothing.
	ExactStartPositions bool
	// HoldInsert: the application recorder implements Holder, so that the
	// interleaved-commit case can hold one insert open while another commits.
	HoldInsert bool
	// Tracking: the factory builds tracking and process recorders. Without it
	// both must fail with ErrNotSupported.
	Tracking bool
	// Subscribe: application recorders implement Subscribe. Without it Subscribe
	// must fail with ErrNotSupported.
	Subscribe bool
	// MultiOriginatorBatches: one InsertEvents batch may hold several originators'
	// events, atomically (what process applications need). Without it such a
	// batch must fail with ErrProgramming or ErrNotSupported and write nothing.
	MultiOriginatorBatches bool
	// RejectsVersionGaps: a batch whose versions do not follow the originator's
	// last version by exactly one fails with ErrIntegrity (EventStoreDB, whose
	// stream revisions are gap-free). Without it such a batch is stored as given
	// (versions may skip and arrive out of order, as snapshots do), and the suite
	// checks that.
	RejectsVersionGaps bool
	// SnapshotUpTo: the snapshots aggregate recorder (recorder.PurposeSnapshots)
	// answers UpTo (lte) queries, so "the latest snapshot at or before v" can
	// be read.
	SnapshotUpTo bool
}

// DefaultCapabilities are those of the memory and SQL backends.
func DefaultCapabilities() Capabilities {
	return Capabilities{
		ContiguousIDs:          true,
		HoldInsert:             true,
		Tracking:               true,
		Subscribe:              true,
		MultiOriginatorBatches: true,
		SnapshotUpTo:           true,
	}
}

// Holder is the test hook of Capabilities.HoldInsert, implemented by an
// application recorder: HoldInsertEvents validates the batch and starts its
// insert transaction (taking whatever locks and ids a real insert takes), then
// returns without committing. commit completes the insert and returns the batch's
// notification ids. The suite always calls commit, exactly once.
type Holder interface {
	HoldInsertEvents(ctx context.Context, events []recorder.StoredEvent) (commit func() ([]int64, error), err error)
}

// Factory is what a backend hands the suite: how to open a fresh persistence
// factory, what it can do, and the sizes of the heavier cases.
type Factory struct {
	// Name labels failure messages; optional.
	Name string
	// Open returns a persistence factory whose recorders are new and empty (a new
	// database file, a new schema or table prefix, a new server). It is called
	// once per case and once per benchmark run; the suite closes the factory when
	// the case ends, before the cleanups Open registered on tb run.
	Open func(tb testing.TB) recorder.Factory
	// Caps declares the backend's lawful differences.
	Caps Capabilities

	// Racers is the number of goroutines of the race cases (default 20).
	Racers int
	// RaceRounds is how often the race cases repeat (default 50); slow backends
	// may use fewer.
	RaceRounds int
	// Writers and InsertsPerWriter size WritersWithFollower (defaults 8 × 250).
	Writers, InsertsPerWriter int
	// BatchSize is the size of each batch of NonInterleavingBatches (default 1000).
	BatchSize int
	// ConcurrentJobs is how many 100-event batches each of 10 writers inserts
	// in ConcurrentWritersAndReaders (default 20).
	ConcurrentJobs int
	// BenchAggregates is how many 10-event aggregates the select benchmarks
	// preload (default 1000, that is 10 000 events).
	BenchAggregates int
	// Patience bounds every wait of the suite, Open included (default 60 s:
	// a hang detector, generous for a loaded machine running -race).
	// Reaching it is reported as a hang, not as slowness: no case asserts a speed.
	Patience time.Duration
}

func (f Factory) withDefaults() Factory {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&f.Racers, 20)
	def(&f.RaceRounds, 50)
	def(&f.Writers, 8)
	def(&f.InsertsPerWriter, 250)
	def(&f.BatchSize, 1000)
	def(&f.ConcurrentJobs, 20)
	def(&f.BenchAggregates, 1000)
	if f.Patience <= 0 {
		f.Patience = 60 * time.Second
	}
	return f
}

// suite is the state every case sees.
type suite struct {
	Factory
}

type testCase struct {
	name string
	run  func(t *testing.T, s *suite)
}

// Run runs the conformance suite, each case as a subtest on a fresh factory.
func Run(t *testing.T, f Factory) {
	t.Helper()
	if f.Open == nil {
		t.Fatal("recordertest: Factory.Open is nil")
	}
	s := &suite{Factory: f.withDefaults()}
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"Aggregate", aggregateCases},
		{"Application", applicationCases},
		{"Tracking", trackingCases},
		{"Process", processCases},
		{"Subscription", subscriptionCases},
		{"Concurrency", concurrencyCases},
		{"Failure", failureCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, s) })
			}
		})
	}
}

// open opens a fresh factory that is closed when the test ends. Open is bounded
// by Patience like every other wait of the suite, so that a backend whose Open
// hangs (an unreachable server, a lock it never gets) fails as a hang instead
// of stalling the test binary until go test's own timeout.
func (s *suite) open(t testing.TB) recorder.Factory {
	t.Helper()
	type opened struct {
		f        recorder.Factory
		returned bool // false when Open ended the goroutine (t.FailNow in it)
	}
	done := make(chan opened, 1)
	go func() {
		var o opened
		// Deferred, so that a require in Open, which ends this goroutine with
		// runtime.Goexit, is reported below instead of looking like a hang.
		defer func() { done <- o }()
		o.f = s.Open(t)
		o.returned = true
	}()
	var o opened
	timer := time.NewTimer(s.Patience)
	defer timer.Stop()
	select {
	case o = <-done:
	case <-timer.C:
		// Close whatever a late Open returns; the case ends here.
		go func() {
			if o := <-done; o.f != nil {
				_ = o.f.Close()
			}
		}()
		t.Fatalf("recordertest: %s: Open returned no factory after %v; it hangs", s.Name, s.Patience)
	}
	if !o.returned {
		t.FailNow() // Open failed the test from its goroutine; it said why
	}
	f := o.f
	if f == nil {
		t.Fatalf("recordertest: %s: Open returned a nil factory", s.Name)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("closing the %s factory: %v", s.Name, err)
		}
	})
	return f
}

func (s *suite) aggregate(t testing.TB, purpose recorder.Purpose) recorder.AggregateRecorder {
	t.Helper()
	r, err := s.open(t).AggregateRecorder(t.Context(), purpose)
	if err != nil {
		t.Fatalf("building the %q aggregate recorder: %v", purpose, err)
	}
	return r
}

func (s *suite) application(t testing.TB) recorder.ApplicationRecorder {
	t.Helper()
	r, err := s.open(t).ApplicationRecorder(t.Context())
	if err != nil {
		t.Fatalf("building the application recorder: %v", err)
	}
	return r
}

func (s *suite) tracking(t testing.TB) recorder.TrackingRecorder {
	t.Helper()
	r, err := s.open(t).TrackingRecorder(t.Context())
	if err != nil {
		t.Fatalf("building the tracking recorder: %v", err)
	}
	return r
}

func (s *suite) process(t testing.TB) recorder.ProcessRecorder {
	t.Helper()
	r, err := s.open(t).ProcessRecorder(t.Context())
	if err != nil {
		t.Fatalf("building the process recorder: %v", err)
	}
	return r
}

// patient returns a context that ends after Patience, so that a hang fails the
// case with a message instead of stalling the whole test binary.
func (s *suite) patient(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), s.Patience)
	t.Cleanup(cancel)
	return ctx
}
