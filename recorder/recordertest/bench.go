package recordertest

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// benchState is a typical small encoded event: about the size of a JSON
// domain event with an id, a timestamp and two fields.
var benchState = []byte(`{"originator_id":"6f1c4b1e-64f5-4c4b-9a2e-0a3f5f6d2b11","timestamp":"2024-05-01T12:00:00.123456789Z","name":"Fido","trick":"roll over"}`)

// Savers is the number of goroutines of the InsertOne8Savers benchmark: the
// concurrency its published target is set at, fixed so that results do not
// depend on GOMAXPROCS.
const Savers = 8

// Bench runs the recorder benchmarks. Each reports events/s; allocations are
// reported per operation. Originator ids are made outside the timed loops
// where the loop allows it.
//
// The per-backend set, with the raw single-row INSERT transaction
// that each backend's own BenchmarkRawInsert measures as the baseline:
//
//	InsertOne               save a new 1-event aggregate (one saver)
//	SelectAggregate10       get a 10-event aggregate
//	SelectNotifications100  select the 10,000 notifications of the
//	                        preloaded log (BenchAggregates × 10) in pages of
//	                        100, one page per operation, wrapping around
//	InsertOne8Savers        8 goroutines each saving new 1-event aggregates
//
// and, beside them, inserts of batches of 10 and 100 events.
func Bench(b *testing.B, f Factory) {
	if f.Open == nil {
		b.Fatal("recordertest: Factory.Open is nil")
	}
	s := &suite{Factory: f.withDefaults()}
	b.Run("InsertOne", func(b *testing.B) { s.benchInsert(b, 1) })
	b.Run("InsertBatch10", func(b *testing.B) { s.benchInsert(b, 10) })
	b.Run("InsertBatch100", func(b *testing.B) { s.benchInsert(b, 100) })
	b.Run("SelectAggregate10", s.benchSelectAggregate)
	b.Run("SelectNotifications100", s.benchSelectNotifications)
	b.Run("InsertOne8Savers", func(b *testing.B) { s.benchInsertSavers(b, Savers) })
}

// idMaker makes UUID-shaped originator ids quickly: a random prefix and a counter.
type idMaker struct {
	prefix [24]byte
	n      atomic.Uint64
}

func newIDMaker() *idMaker {
	m := &idMaker{}
	var r [12]byte
	_, _ = rand.Read(r[:])
	h := hex.EncodeToString(r[:]) // 24 hex digits
	copy(m.prefix[:], h[0:8]+"-"+h[8:12]+"-4"+h[13:16]+"-8"+h[17:20]+"-")
	return m
}

func (m *idMaker) next() string {
	const digits = "0123456789abcdef"
	var buf [36]byte
	copy(buf[:], m.prefix[:])
	n := m.n.Add(1)
	for i := 35; i >= 24; i-- {
		buf[i] = digits[n&0xf]
		n >>= 4
	}
	return string(buf[:])
}

// chunk refills ids with the timer stopped, so making ids is not measured.
func (m *idMaker) chunk(b *testing.B, ids []string) {
	b.StopTimer()
	for i := range ids {
		ids[i] = m.next()
	}
	b.StartTimer()
}

func (s *suite) benchApplication(b *testing.B) recorder.ApplicationRecorder {
	b.Helper()
	r, err := s.open(b).ApplicationRecorder(b.Context())
	require.NoError(b, err)
	return r
}

func reportEvents(b *testing.B, events int) {
	if sec := b.Elapsed().Seconds(); sec > 0 {
		b.ReportMetric(float64(events)/sec, "events/s")
	}
}

func (s *suite) benchInsert(b *testing.B, size int) {
	r := s.benchApplication(b)
	ctx := b.Context()
	maker := newIDMaker()
	ids := make([]string, min(b.N, 1<<16))
	batch := make([]recorder.StoredEvent, size)
	for i := range batch {
		batch[i] = recorder.StoredEvent{OriginatorVersion: int64(i), Topic: "example:Dog.TrickAdded", State: benchState}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i % len(ids)
		if j == 0 {
			maker.chunk(b, ids)
		}
		for k := range batch {
			batch[k].OriginatorID = ids[j]
		}
		if _, err := r.InsertEvents(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportEvents(b, b.N*size)
}

// benchInsertSavers runs savers goroutines that share b.N saves of new 1-event
// aggregates. It starts exactly savers goroutines rather than using
// RunParallel, whose goroutine count follows GOMAXPROCS: a backend that groups
// concurrent saves into one commit is measured at the same concurrency on
// every machine.
func (s *suite) benchInsertSavers(b *testing.B, savers int) {
	r := s.benchApplication(b)
	ctx := b.Context()
	maker := newIDMaker()
	var next atomic.Int64 // saves handed out
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for range savers {
		wg.Go(func() {
			batch := []recorder.StoredEvent{{Topic: "example:Dog.TrickAdded", State: benchState}}
			for next.Add(1) <= int64(b.N) {
				batch[0].OriginatorID = maker.next() // one small allocation, measured
				if _, err := r.InsertEvents(ctx, batch); err != nil {
					b.Error(err)
					next.Store(int64(b.N)) // stop the others too
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	reportEvents(b, b.N)
}

// preload stores BenchAggregates aggregates of 10 events and returns their ids.
func (s *suite) preload(b *testing.B, r recorder.ApplicationRecorder) []string {
	b.Helper()
	maker := newIDMaker()
	ids := make([]string, s.BenchAggregates)
	batch := make([]recorder.StoredEvent, 10)
	for i := range ids {
		ids[i] = maker.next()
		for v := range batch {
			batch[v] = recorder.StoredEvent{OriginatorID: ids[i], OriginatorVersion: int64(v), Topic: "example:Dog.TrickAdded", State: benchState}
		}
		if _, err := r.InsertEvents(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

func (s *suite) benchSelectAggregate(b *testing.B) {
	r := s.benchApplication(b)
	ctx := b.Context()
	ids := s.preload(b, r)
	events := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		got, err := r.SelectEvents(ctx, ids[i%len(ids)], recorder.EventQuery{})
		if err != nil {
			b.Fatal(err)
		}
		events += len(got)
	}
	b.StopTimer()
	if events != 10*b.N {
		b.Fatalf("selected %d events, want %d", events, 10*b.N)
	}
	reportEvents(b, events)
}

func (s *suite) benchSelectNotifications(b *testing.B) {
	r := s.benchApplication(b)
	ctx := b.Context()
	s.preload(b, r)
	maxID, _, err := r.MaxNotificationID(ctx)
	require.NoError(b, err)
	q := recorder.NotificationQuery{After: recorder.After(0), Limit: 100}
	events := 0
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		page, err := r.SelectNotifications(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		events += len(page)
		if len(page) == 0 || page[len(page)-1].ID >= maxID {
			q.After = recorder.After(0) // wrap around to the start of the log
		} else {
			q.After = recorder.After(page[len(page)-1].ID)
		}
	}
	b.StopTimer()
	reportEvents(b, events)
}
