package esdb_test

import (
	"context"
	"fmt"
	"log"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/esdb"
	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

// connect starts an in-process server and a client for it. A real node works
// the same way: esdbclient.ParseConnectionString("esdb://localhost:2113?tls=false").
func connect() (*esdbclient.Client, func()) {
	srv, err := esdbtest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := esdbclient.ParseConnectionString(srv.URI())
	if err != nil {
		log.Fatal(err)
	}
	cfg.Logger = esdbclient.NoopLogging()
	client, err := esdbclient.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	return client, func() { _ = client.Close(); _ = srv.Close() }
}

// newEvent is the seed's NewEvent(type=..., data=b'{}', metadata=b'{}').
func newEvent(eventType string) esdbclient.EventData {
	return esdbclient.EventData{EventID: uuid.New(), EventType: eventType, ContentType: esdbclient.ContentTypeBinary,
		Data: []byte("{}"), Metadata: []byte("{}")}
}

// orderStream appends the seed's three events to a new stream: one with
// "expected position None" (NoStream), then two expecting position 0.
func orderStream(ctx context.Context, client *esdbclient.Client) (stream string, commitPosition1 uint64) {
	stream = uuid.NewString()
	res, err := client.AppendToStream(ctx, stream, esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.NoStream{}},
		newEvent("OrderCreated"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := client.AppendToStream(ctx, stream, esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.Revision(0)},
		newEvent("OrderUpdated"), newEvent("OrderDeleted")); err != nil {
		log.Fatal(err)
	}
	return stream, res.CommitPosition
}

// readStream collects a stream read; the client's ReadStream is an iterator.
func readStream(ctx context.Context, client *esdbclient.Client, stream string, opts esdbclient.ReadStreamOptions, limit uint64) []*esdbclient.RecordedEvent {
	rs, err := client.ReadStream(ctx, stream, opts, limit)
	if err != nil {
		log.Fatal(err)
	}
	defer rs.Close()
	var out []*esdbclient.RecordedEvent
	for {
		e, err := rs.Recv()
		if err != nil {
			return out // io.EOF at the end
		}
		out = append(out, e.Event)
	}
}

func show(events []*esdbclient.RecordedEvent) {
	for _, e := range events {
		fmt.Print(" ", e.EventNumber, ":", e.EventType)
	}
	fmt.Println()
}

// Append with an expected position, get the stream's position, and a
// mismatch: the seed's append_events and get_stream_position.
func Example_appendEvents() {
	ctx := context.Background()
	client, done := connect()
	defer done()

	stream, _ := orderStream(ctx, client)
	position, ok, err := esdb.StreamPosition(ctx, client, stream)
	fmt.Println(position, ok, err)

	// A missing stream has no position, which is not position 0.
	_, ok, err = esdb.StreamPosition(ctx, client, "stream-unknown")
	fmt.Println(ok, err)

	// A wrong expected position fails: optimistic concurrency control.
	_, err = client.AppendToStream(ctx, stream, esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.Revision(0)}, newEvent("OrderUpdated"))
	if e, ok := esdbclient.FromError(err); !ok {
		fmt.Println(e.Code() == esdbclient.ErrorCodeWrongExpectedVersion)
	}
	// Output:
	// 2 true <nil>
	// false <nil>
	// true
}

// Read a stream forwards, from a position, backwards, with a limit: the
// seed's read_stream_events. A position is included in both directions.
func Example_readStream() {
	ctx := context.Background()
	client, done := connect()
	defer done()
	stream, _ := orderStream(ctx, client)
	const all = ^uint64(0) >> 1 // no limit

	show(readStream(ctx, client, stream, esdbclient.ReadStreamOptions{}, all))
	show(readStream(ctx, client, stream, esdbclient.ReadStreamOptions{From: esdbclient.Revision(1)}, all))
	show(readStream(ctx, client, stream, esdbclient.ReadStreamOptions{Direction: esdbclient.Backwards, From: esdbclient.End{}}, all))
	show(readStream(ctx, client, stream, esdbclient.ReadStreamOptions{}, 2))
	show(readStream(ctx, client, stream, esdbclient.ReadStreamOptions{Direction: esdbclient.Backwards, From: esdbclient.Revision(2)}, 1))
	// Output:
	//  0:OrderCreated 1:OrderUpdated 2:OrderDeleted
	//  1:OrderUpdated 2:OrderDeleted
	//  2:OrderDeleted 1:OrderUpdated 0:OrderCreated
	//  0:OrderCreated 1:OrderUpdated
	//  2:OrderDeleted
}

// Read $all from a commit position, backwards, with a limit and with type
// filters: the seed's read_all_events. System events are excluded by default.
func ExampleReadAll() {
	ctx := context.Background()
	client, done := connect()
	defer done()
	stream, commitPosition1 := orderStream(ctx, client)

	events, _ := esdb.ReadAll(ctx, client, esdb.ReadAllOptions{})
	fmt.Println(len(events) >= 3)

	// From the first event's commit position: exactly the three events.
	events, _ = esdb.ReadAll(ctx, client, esdb.ReadAllOptions{From: &commitPosition1})
	fmt.Println(len(events), events[0].StreamID == stream)
	show(events)

	events, _ = esdb.ReadAll(ctx, client, esdb.ReadAllOptions{Backwards: true})
	show(events[:3])
	events, _ = esdb.ReadAll(ctx, client, esdb.ReadAllOptions{From: &commitPosition1, Limit: 1})
	show(events)
	events, _ = esdb.ReadAll(ctx, client, esdb.ReadAllOptions{Backwards: true, Limit: 1})
	show(events)

	// Filters apply on the server, before the limit.
	events, _ = esdb.ReadAll(ctx, client, esdb.ReadAllOptions{Filter: esdb.Filter{Include: []string{`Order(Created|Deleted)`}}})
	show(events)
	events, _ = esdb.ReadAll(ctx, client, esdb.ReadAllOptions{Limit: 1, Filter: esdb.Filter{Exclude: []string{esdb.EventsRegex, `.*Created`}}})
	show(events)
	// Output:
	// true
	// 3 true
	//  0:OrderCreated 1:OrderUpdated 2:OrderDeleted
	//  2:OrderDeleted 1:OrderUpdated 0:OrderCreated
	//  0:OrderCreated
	//  2:OrderDeleted
	//  0:OrderCreated 2:OrderDeleted
	//  1:OrderUpdated
}

// A catch-up subscription from the current commit position receives the
// three events appended after it, then three more appended later: the seed's
// get_commit_position and subscribe_all_events.
func ExampleSubscribeAll() {
	ctx := context.Background()
	client, done := connect()
	defer done()

	commitPosition, err := esdb.CommitPosition(ctx, client)
	if err != nil {
		log.Fatal(err)
	}
	stream1, _ := orderStream(ctx, client)

	sub, err := esdb.SubscribeAll(ctx, client, &commitPosition, esdb.Filter{})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	receive := func(stream string) {
		for range 3 {
			e, err := sub.Recv()
			if err != nil {
				log.Fatal(err)
			}
			fmt.Print(" ", e.StreamID == stream, ":", e.EventType)
		}
		fmt.Println()
	}
	receive(stream1)

	stream2 := uuid.NewString()
	if _, err := client.AppendToStream(ctx, stream2, esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.NoStream{}},
		newEvent("OrderCreated"), newEvent("OrderUpdated"), newEvent("OrderDeleted")); err != nil {
		log.Fatal(err)
	}
	receive(stream2)
	// Output:
	//  true:OrderCreated true:OrderUpdated true:OrderDeleted
	//  true:OrderCreated true:OrderUpdated true:OrderDeleted
}
