package esdbtest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

func Example() {
	srv, err := esdbtest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	cfg, err := esdb.ParseConnectionString(srv.URI())
	if err != nil {
		log.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	client, err := esdb.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ctx := context.Background()
	_, err = client.AppendToStream(ctx, "order-1", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}},
		esdb.EventData{EventType: "OrderPlaced", ContentType: esdb.ContentTypeJson, Data: []byte(`{"total":42}`)})
	if err != nil {
		log.Fatal(err)
	}

	stream, err := client.ReadStream(ctx, "order-1", esdb.ReadStreamOptions{}, 10)
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	e, err := stream.Recv()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Event.StreamID, e.Event.EventNumber, e.Event.EventType, string(e.Event.Data))
	// Output: order-1 0 OrderPlaced {"total":42}
}
