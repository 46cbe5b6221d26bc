package esdbtest_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

// newClient connects the official client to srv.
func newClient(t testing.TB, srv *esdbtest.Server) *esdb.Client {
	t.Helper()
	return esdbtest.Dial(t, srv.URI())
}

func startClient(t testing.TB, opts ...esdbtest.Option) (*esdbtest.Server, *esdb.Client) {
	t.Helper()
	srv := esdbtest.Start(t, opts...)
	return srv, newClient(t, srv)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ev(typ string, data string) esdb.EventData {
	return esdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdb.ContentTypeJson, Data: []byte(data)}
}

func evs(n int) []esdb.EventData {
	out := make([]esdb.EventData, n)
	for i := range out {
		out[i] = ev("TestEvent", `{"i":1}`)
	}
	return out
}

func streamName() string { return "test-" + uuid.NewString() }

// readStream reads a whole stream in a direction and returns the events, or
// the error of the first Recv.
func readStream(t testing.TB, c *esdb.Client, name string, opts esdb.ReadStreamOptions, count uint64) ([]*esdb.ResolvedEvent, error) {
	t.Helper()
	rs, err := c.ReadStream(ctxT(t), name, opts, count)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	return collect(rs.Recv)
}

func readAll(t testing.TB, c *esdb.Client, opts esdb.ReadAllOptions, count uint64) ([]*esdb.ResolvedEvent, error) {
	t.Helper()
	rs, err := c.ReadAll(ctxT(t), opts, count)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	return collect(rs.Recv)
}

func collect(recv func() (*esdb.ResolvedEvent, error)) ([]*esdb.ResolvedEvent, error) {
	var out []*esdb.ResolvedEvent
	for {
		e, err := recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

func errCode(err error) esdb.ErrorCode {
	var e *esdb.Error
	if err == nil {
		return -1
	}
	if errors.As(err, &e) {
		return e.Code()
	}
	return -2
}

func startServer(t testing.TB, opts ...esdbtest.Option) *esdbtest.Server {
	t.Helper()
	return esdbtest.Start(t, opts...)
}
