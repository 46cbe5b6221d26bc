package main

import (
	"context"
	"io"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

func TestRunProjectionsSetting(t *testing.T) {
	cfg, _, err := configFromEnv([]string{"EVENTSTORE_RUN_PROJECTIONS=System"})
	require.NoError(t, err)
	assert.Equal(t, esdbtest.ProjectionsSystem, cfg.projections)
	require.NoError(t, cfg.parseFlags([]string{"-run-projections", "all"}, io.Discard))
	assert.Equal(t, esdbtest.ProjectionsAll, cfg.projections, "the flag wins over the variable")
	assert.Len(t, cfg.projectionOptions(), 1)
	assert.Error(t, cfg.parseFlags([]string{"-run-projections", "some"}, io.Discard))

	none, _, err := configFromEnv(nil)
	require.NoError(t, err)
	assert.Empty(t, none.projectionOptions())
}

// With -run-projections=all the node runs the system projections and
// user projections over the official client.
func TestRunProjectionsAll(t *testing.T) {
	uri := startNode(t, "-addr", "127.0.0.1:0", "-run-projections=all")
	cfg, err := esdbclient.ParseConnectionString(uri)
	require.NoError(t, err)
	cfg.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(cfg)
	require.NoError(t, err)
	defer c.Close()
	pc := esdbclient.NewProjectionClientFromExistingClient(c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	_, err = c.AppendToStream(ctx, "cart-1", esdbclient.AppendToStreamOptions{}, esdbclient.EventData{
		EventType: "ItemAdded", ContentType: esdbclient.ContentTypeJson, Data: []byte(`{"n":2}`),
	})
	require.NoError(t, err)
	require.NoError(t, pc.Create(ctx, "sum", `fromCategory("cart").when({
		$init: function () { return { n: 0 }; },
		ItemAdded: function (s, e) { s.n += e.body.n; }
	})`, esdbclient.CreateProjectionOptions{}))
	require.Eventually(t, func() bool {
		st, err := pc.GetStatus(ctx, "sum", esdbclient.GenericProjectionOptions{})
		return err == nil && st.EventsProcessedAfterRestart >= 1
	}, 15*time.Second, 5*time.Millisecond)
	state, err := pc.GetState(ctx, "sum", esdbclient.GetStateProjectionOptions{})
	require.NoError(t, err)
	b, err := state.MarshalJSON()
	require.NoError(t, err)
	assert.JSONEq(t, `{"n":2}`, string(b))

	all, err := pc.ListAll(ctx, esdbclient.GenericProjectionOptions{})
	require.NoError(t, err)
	var names []string
	for _, p := range all {
		names = append(names, p.Name)
	}
	assert.Subset(t, names, []string{"$by_category", "$by_event_type", "$streams", "$stream_by_category", "$by_correlation_id", "sum"})
}
