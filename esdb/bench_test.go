package esdb_test

import (
	"errors"
	"io"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/recordertest"
)

// The module's benchmarks, on esdbtest.
func BenchmarkRecorders(b *testing.B) {
	recordertest.Bench(b, conformanceFactory("eventstoredb on esdbtest", false, esdbtestURI))
}

var benchState = []byte(`{"originator_id":"6f1c4b1e-64f5-4c4b-9a2e-0a3f5f6d2b11","timestamp":"2024-05-01T12:00:00.123456789Z","name":"Fido","trick":"roll over"}`)

func reportEvents(b *testing.B, n int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(n)/s, "events/s")
	}
}

// BenchmarkRaw does the work of the recorder benchmarks with bare client
// calls against the same server, for the ratio: the substrate's cost.
func BenchmarkRaw(b *testing.B) {
	b.Run("InsertOne", func(b *testing.B) { benchRawAppend(b, 1) })
	b.Run("InsertBatch10", func(b *testing.B) { benchRawAppend(b, 10) })
	b.Run("InsertBatch100", func(b *testing.B) { benchRawAppend(b, 100) })
	b.Run("SelectAggregate10", benchRawRead)
}

func benchRawAppend(b *testing.B, size int) {
	c := newClient(b, esdbtestURI(b))
	ctx := b.Context()
	events := make([]esdbclient.EventData, size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for i := range events {
			events[i] = esdbclient.EventData{EventID: uuid.New(), EventType: "example:Dog.TrickAdded", ContentType: esdbclient.ContentTypeBinary, Data: benchState, Metadata: []byte("{}")}
		}
		if _, err := c.AppendToStream(ctx, uuid.NewString(), esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.NoStream{}}, events...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportEvents(b, b.N*size)
}

func benchRawRead(b *testing.B) {
	uri := esdbtestURI(b)
	c := newClient(b, uri)
	ctx := b.Context()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = uuid.NewString()
		events := make([]esdbclient.EventData, 10)
		for v := range events {
			events[v] = esdbclient.EventData{EventID: uuid.New(), EventType: "t", ContentType: esdbclient.ContentTypeBinary, Data: benchState}
		}
		if _, err := c.AppendToStream(ctx, ids[i], esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.NoStream{}}, events...); err != nil {
			b.Fatal(err)
		}
	}
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		n += rawRead(b, c, ids[i%len(ids)])
	}
	b.StopTimer()
	if n != 10*b.N {
		b.Fatalf("read %d events, want %d", n, 10*b.N)
	}
	reportEvents(b, n)
}

// BenchmarkPaired runs each recorder workload beside bare client calls
// doing the same work on the same server, one of each per iteration in an
// order that swaps every iteration, so that both sides see the same load
// on a shared machine. It reports the median time of each side
// (module-ns/op, raw-ns/op) and their ratio (module over raw), the figure the
// module is judged by.
func BenchmarkPaired(b *testing.B) {
	b.Run("InsertOne", func(b *testing.B) { benchPairedInsert(b, 1) })
	b.Run("InsertBatch10", func(b *testing.B) { benchPairedInsert(b, 10) })
	b.Run("InsertBatch100", func(b *testing.B) { benchPairedInsert(b, 100) })
	b.Run("SelectAggregate10", benchPairedSelect)
}

// paired times module and raw alternately, b.N times each.
func paired(b *testing.B, module, raw func(i int)) {
	mod := make([]time.Duration, 0, b.N)
	bare := make([]time.Duration, 0, b.N)
	timed := func(fn func(int), i int, into *[]time.Duration) {
		t0 := time.Now()
		fn(i)
		*into = append(*into, time.Since(t0))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			timed(module, i, &mod)
			timed(raw, i, &bare)
		} else {
			timed(raw, i, &bare)
			timed(module, i, &mod)
		}
	}
	b.StopTimer()
	m, r := median(mod), median(bare)
	b.ReportMetric(float64(m.Nanoseconds()), "module-ns/op")
	b.ReportMetric(float64(r.Nanoseconds()), "raw-ns/op")
	b.ReportMetric(float64(m)/float64(r), "ratio")
}

// pairedServer starts one server for both sides: the module's application
// recorder and a bare client.
func pairedServer(b *testing.B) (recorder.ApplicationRecorder, *esdbclient.Client) {
	uri := esdbtestURI(b)
	r, err := openOn(b, "conformance", uri, nil).ApplicationRecorder(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	return r, newClient(b, uri)
}

func benchPairedInsert(b *testing.B, size int) {
	r, c := pairedServer(b)
	ctx := b.Context()
	batch := make([]recorder.StoredEvent, size)
	for i := range batch {
		batch[i] = recorder.StoredEvent{OriginatorVersion: int64(i), Topic: "example:Dog.TrickAdded", State: benchState}
	}
	events := make([]esdbclient.EventData, size)
	paired(b, func(int) {
		id := uuid.NewString()
		for k := range batch {
			batch[k].OriginatorID = id
		}
		if _, err := r.InsertEvents(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}, func(int) {
		for i := range events {
			events[i] = esdbclient.EventData{EventID: uuid.New(), EventType: "example:Dog.TrickAdded", ContentType: esdbclient.ContentTypeBinary, Data: benchState, Metadata: []byte("{}")}
		}
		if _, err := c.AppendToStream(ctx, uuid.NewString(), esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.NoStream{}}, events...); err != nil {
			b.Fatal(err)
		}
	})
	reportEvents(b, 2*b.N*size)
}

func benchPairedSelect(b *testing.B) {
	r, c := pairedServer(b)
	ctx := b.Context()
	ids := make([]string, 1000)
	batch := make([]recorder.StoredEvent, 10)
	for i := range ids {
		ids[i] = uuid.NewString()
		for v := range batch {
			batch[v] = recorder.StoredEvent{OriginatorID: ids[i], OriginatorVersion: int64(v), Topic: "example:Dog.TrickAdded", State: benchState}
		}
		if _, err := r.InsertEvents(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	paired(b, func(i int) {
		got, err := r.SelectEvents(ctx, ids[i%len(ids)], recorder.EventQuery{})
		if err != nil || len(got) != 10 {
			b.Fatal(err, len(got))
		}
	}, func(i int) {
		if n := rawRead(b, c, ids[i%len(ids)]); n != 10 {
			b.Fatalf("read %d events, want 10", n)
		}
	})
}

// rawRead reads a whole stream with the bare client and returns how many
// events it holds.
func rawRead(b *testing.B, c *esdbclient.Client, stream string) int {
	rs, err := c.ReadStream(b.Context(), stream, esdbclient.ReadStreamOptions{}, 1<<62)
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()
	n := 0
	for {
		_, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
}
