package esdbtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

// Every benchmark runs twice through the official client, one writer or
// reader: against the server ("server") and against a floor server that
// does no work and answers with pre-encoded bytes ("floor", see
// StartFloor). Client and server share the process and its cores, so the
// floor is the most the client can do here; the server is judged by its
// ratio to it as much as by the absolute target.

// readAllEvents is how many events the $all read returns: 100 appends of
// 1,000 events after the 5 records a fresh node has.
const readAllEvents = 100*1000 + 5

// report reports events/s and the process's CPU time per event. On a
// machine shared with other work the wall-clock rate swings with the
// load, while the CPU cost per event is steady: it is what to compare
// between versions, and 2 cores / cost is the rate an idle machine allows
// at most.
func report(b *testing.B, events int, cpu0 time.Duration) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(esdbtest.CPUTime(b)-cpu0)/float64(events), "cpu-ns/event")
}

// benchBoth runs body against the server and against the floor.
func benchBoth(b *testing.B, body func(b *testing.B, c *esdb.Client, real bool)) {
	b.Run("server", func(b *testing.B) {
		_, c := startClient(b)
		body(b, c, true)
	})
	b.Run("floor", func(b *testing.B) {
		body(b, esdbtest.Dial(b, esdbtest.StartFloor(b, readAllEvents)), false)
	})
}

func binaryEvents(n int) []esdb.EventData {
	batch := evs(n)
	for i := range batch {
		batch[i].Data = make([]byte, 100)
		batch[i].ContentType = esdb.ContentTypeBinary
	}
	return batch
}

// appendN appends batches of n events to one stream, fresh event ids each
// time, and reports events/s.
func appendN(b *testing.B, c *esdb.Client, n int) {
	ctx := context.Background()
	name := streamName()
	batch := binaryEvents(n)
	if n == 1 {
		batch = evs(1)
	}
	cpu0 := esdbtest.CPUTime(b)
	for b.Loop() {
		for i := range batch {
			batch[i].EventID = [16]byte{} // the client generates one
		}
		if _, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, batch...); err != nil {
			b.Fatal(err)
		}
	}
	report(b, b.N*n, cpu0)
}

// BenchmarkAppendSingle measures one-event appends (target: 30,000
// appends/s), beside a bare gRPC unary round trip to the same server
// ("unary", Gossip.Read through a plain connection), the least any call
// costs on this transport.
func BenchmarkAppendSingle(b *testing.B) {
	benchBoth(b, func(b *testing.B, c *esdb.Client, _ bool) { appendN(b, c, 1) })
	b.Run("unary", func(b *testing.B) {
		g := gossip.NewGossipClient(dialRaw(b, startServer(b)))
		ctx := context.Background()
		cpu0 := esdbtest.CPUTime(b)
		for b.Loop() {
			if _, err := g.Read(ctx, &shared.Empty{}); err != nil {
				b.Fatal(err)
			}
		}
		report(b, b.N, cpu0)
	})
}

// BenchmarkAppend100 measures appends of 100 events of 100 bytes (target:
// 200,000 events/s).
func BenchmarkAppend100(b *testing.B) {
	benchBoth(b, func(b *testing.B, c *esdb.Client, _ bool) { appendN(b, c, 100) })
}

// fillAll appends 100 streams of 1,000 events of 100 bytes.
func fillAll(b *testing.B, c *esdb.Client) {
	batch := binaryEvents(1000)
	for range 100 {
		for i := range batch {
			batch[i].EventID = [16]byte{}
		}
		_, err := c.AppendToStream(context.Background(), streamName(), esdb.AppendToStreamOptions{}, batch...)
		require.NoError(b, err)
	}
}

// BenchmarkReadAll measures reading all of $all forwards, 100,005 events
// of 100 bytes (target: 500,000 events/s). One untimed read first warms
// the server, as a running node is warm.
func BenchmarkReadAll(b *testing.B) {
	benchBoth(b, func(b *testing.B, c *esdb.Client, real bool) {
		ctx := context.Background()
		if real {
			fillAll(b, c)
		}
		readAll := func() int {
			rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{}, 1<<62)
			require.NoError(b, err)
			defer rs.Close()
			n := 0
			for {
				if _, err := rs.Recv(); err != nil {
					return n
				}
				n++
			}
		}
		require.Equal(b, readAllEvents, readAll())
		var n int
		cpu0 := esdbtest.CPUTime(b)
		for b.Loop() {
			n += readAll()
		}
		report(b, n, cpu0)
	})
}

// BenchmarkBatchAppend100 appends 100 events of 100 bytes per write through
// Streams.Append (the official client, one message per event) and through
// Streams.BatchAppend (one call kept open, one request per write, as the
// clients that use it do); BatchAppend must be at least as fast.
func BenchmarkBatchAppend100(b *testing.B) {
	b.Run("Append", func(b *testing.B) {
		_, c := startClient(b)
		appendN(b, c, 100)
	})
	b.Run("BatchAppend", func(b *testing.B) {
		ba := openBatch(b, dialRaw(b, startServer(b)))
		name := streamName()
		batch := binaryEvents(100)
		cpu0 := esdbtest.CPUTime(b)
		for b.Loop() {
			for i := range batch {
				batch[i].EventID = uuid.New()
			}
			req := &streams.BatchAppendReq{CorrelationId: structuredUUID(uuid.New()),
				Options: batchOptions(name, esdb.Any{}), ProposedMessages: proposedOf(batch...), IsFinal: true}
			if err := ba.Send(req); err != nil {
				b.Fatal(err)
			}
			resp, err := ba.Recv()
			if err != nil || resp.GetSuccess() == nil {
				b.Fatal(err, resp)
			}
		}
		report(b, b.N*100, cpu0)
	})
}

// BenchmarkReadAllFiltered reads 100,000 events of $all through an
// event-type filter, as a regex (a .NET regex, as the server evaluates it)
// and as prefixes, every event matching.
func BenchmarkReadAllFiltered(b *testing.B) {
	srv, c := startClient(b)
	ctx := context.Background()
	fillAll(b, c)
	conn := dialRaw(b, srv)
	for _, f := range []struct {
		name   string
		filter *streams.ReadReq_Options_FilterOptions
	}{
		{"regex", typeFilter(`^(?:TestEvent|OtherEvent)$`)},
		{"prefix", typeFilter("", "TestEvent", "OtherEvent")},
	} {
		b.Run(f.name, func(b *testing.B) {
			var n int
			cpu0 := esdbtest.CPUTime(b)
			for b.Loop() {
				rs, err := streams.NewStreamsClient(conn).Read(ctx, &streams.ReadReq{Options: &streams.ReadReq_Options{
					StreamOption: &streams.ReadReq_Options_All{All: &streams.ReadReq_Options_AllOptions{
						AllOption: &streams.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}}}},
					CountOption:  &streams.ReadReq_Options_Count{Count: 1 << 62},
					FilterOption: &streams.ReadReq_Options_Filter{Filter: f.filter},
					UuidOption:   &streams.ReadReq_Options_UUIDOption{Content: &streams.ReadReq_Options_UUIDOption_Structured{Structured: &shared.Empty{}}},
				}})
				require.NoError(b, err)
				for {
					if _, err := rs.Recv(); err != nil {
						break
					}
					n++
				}
			}
			report(b, n, cpu0)
		})
	}
}
