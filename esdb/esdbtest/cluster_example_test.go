package esdbtest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

// A client discovers a three-node cluster from its seeds, writes on the
// leader, and finds the new leader after the old one is killed.
func ExampleCluster() {
	c, err := esdbtest.NewCluster(3)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	cfg, err := esdb.ParseConnectionString(c.URI()) // every node as a gossip seed
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
	appendOne := func() error {
		_, err := client.AppendToStream(ctx, "order-1", esdb.AppendToStreamOptions{},
			esdb.EventData{EventType: "OrderPlaced", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)})
		return err
	}
	if err := appendOne(); err != nil {
		log.Fatal(err)
	}

	nodes := c.Nodes()
	killed, err := c.KillLeader()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("killed node 1:", killed == nodes[0], "new leader is node 2:", c.Leader() == nodes[1])

	// The call that meets the dead connection fails; the client then
	// discovers the new leader.
	for range 10 {
		if err = appendOne(); err == nil {
			break
		}
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("written after the failover")
	// Output:
	// killed node 1: true new leader is node 2: true
	// written after the failover
}
