package esdb_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"

	"github.com/eventsourcing-go/eventsourcing/esdb"
)

// target is a server the tests run against: esdbtest always, a real node
// when one is available.
type target struct {
	name string
	uri  func(t testing.TB) string
}

func targets() []target {
	return []target{
		{"esdbtest", esdbtestURI},
		{"EventStoreDB", realURI},
	}
}

var real struct {
	once    sync.Once
	uri     string
	skip    string
	cleanup func()
}

// realURI returns the URI of a real EventStoreDB: EVENTSTOREDB_URI when set,
// else a container (eventstore/eventstore:24.10, insecure) started once for
// the test binary when a Docker engine answers. Otherwise the test is
// skipped with one line.
func realURI(t testing.TB) string {
	t.Helper()
	real.once.Do(startReal)
	if real.skip != "" {
		t.Skip(real.skip)
	}
	return real.uri
}

func startReal() {
	if uri := os.Getenv("EVENTSTOREDB_URI"); uri != "" {
		real.uri = uri
		return
	}
	const skip = "no EventStoreDB: set EVENTSTOREDB_URI or run a Docker engine"
	pool, err := dockertest.NewPool("")
	if err != nil || pool.Client.Ping() != nil {
		real.skip = skip
		return
	}
	res, err := pool.RunWithOptions(&dockertest.RunOptions{
		Repository: "eventstore/eventstore", Tag: "24.10",
		Env: []string{"EVENTSTORE_INSECURE=true", "EVENTSTORE_MEM_DB=true", "EVENTSTORE_RUN_PROJECTIONS=None"},
	}, func(hc *docker.HostConfig) { hc.AutoRemove = true })
	if err != nil {
		real.skip = skip + " (docker run failed: " + err.Error() + ")"
		return
	}
	_ = res.Expire(600) // never outlive a crashed test binary by long
	uri := "esdb://" + res.GetHostPort("2113/tcp") + "?tls=false"
	pool.MaxWait = 90 * time.Second
	if err := pool.Retry(func() error { return ping(uri) }); err != nil {
		_ = pool.Purge(res)
		real.skip = skip + " (the container did not answer: " + err.Error() + ")"
		return
	}
	real.uri = uri
	real.cleanup = func() { _ = pool.Purge(res) }
}

func ping(uri string) error {
	cfg, err := esdbclient.ParseConnectionString(uri)
	if err != nil {
		return err
	}
	cfg.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = esdb.CommitPosition(ctx, c)
	return err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if real.cleanup != nil {
		real.cleanup()
	}
	os.Exit(code)
}

// newClient returns a client for uri, closed when the test ends.
func newClient(t testing.TB, uri string) *esdbclient.Client {
	t.Helper()
	cfg, err := esdbclient.ParseConnectionString(uri)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
