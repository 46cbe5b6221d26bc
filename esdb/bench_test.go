package esdb_test

import (
	"errors"
	"io"
	"testing"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

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
		rs, err := c.ReadStream(ctx, ids[i%len(ids)], esdbclient.ReadStreamOptions{}, 1<<62)
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		rs.Close()
	}
	b.StopTimer()
	if n != 10*b.N {
		b.Fatalf("read %d events, want %d", n, 10*b.N)
	}
	reportEvents(b, n)
}
