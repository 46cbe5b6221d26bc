package esdb_test

import (
	"encoding/json"
	"testing"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/esdb"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

const (
	sampledParent   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	unsampledParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b8-00"
)

// The trace context of an event travels in its metadata under the keys of
// the official clients' instrumentation, beside the application's name and
// the tracking entry, and comes back on every read and subscription.
func TestTraceContextInMetadata(t *testing.T) {
	uri := esdbtestURI(t)
	on := map[string]string{esdb.KeyTrackingInMetadata: "true"}
	f := openOn(t, "Traced", uri, on)
	t.Cleanup(func() { _ = f.Close() })
	r, err := f.ProcessRecorder(t.Context())
	require.NoError(t, err)
	ctx := t.Context()

	traced, tracked, plain, unsampled := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	_, err = r.InsertEvents(ctx, []recorder.StoredEvent{
		{OriginatorID: traced, Topic: "t", State: []byte("a"), TraceParent: sampledParent},
		{OriginatorID: traced, OriginatorVersion: 1, Topic: "t", State: []byte("b"), TraceParent: sampledParent},
	})
	require.NoError(t, err)
	_, err = r.InsertEvents(ctx, []recorder.StoredEvent{{OriginatorID: tracked, Topic: "t", TraceParent: sampledParent}},
		recorder.WithTracking(recorder.Tracking{ApplicationName: "Up", NotificationID: 5}))
	require.NoError(t, err)
	_, err = r.InsertEvents(ctx, []recorder.StoredEvent{{OriginatorID: plain, Topic: "t"}})
	require.NoError(t, err)
	_, err = r.InsertEvents(ctx, []recorder.StoredEvent{{OriginatorID: unsampled, Topic: "t", TraceParent: unsampledParent}})
	require.NoError(t, err)

	want := map[string]string{traced: sampledParent, tracked: sampledParent, plain: "", unsampled: ""}
	for id, tp := range want {
		events, err := r.SelectEvents(ctx, id, recorder.EventQuery{})
		require.NoError(t, err)
		require.NotEmpty(t, events)
		for _, e := range events {
			assert.Equal(t, tp, e.TraceParent, "SelectEvents %s v%d", id, e.OriginatorVersion)
		}
	}
	ns, err := r.SelectNotifications(ctx, recorder.NotificationQuery{Limit: 10})
	require.NoError(t, err)
	require.Len(t, ns, 5)
	sub, err := r.Subscribe(ctx, recorder.Start(), nil)
	require.NoError(t, err)
	defer sub.Close()
	for _, n := range ns {
		assert.Equal(t, want[n.OriginatorID], n.TraceParent, "SelectNotifications %d", n.ID)
		got, err := sub.Next(ctx)
		require.NoError(t, err)
		assert.Equal(t, n.ID, got.ID)
		assert.Equal(t, want[n.OriginatorID], got.TraceParent, "Subscribe %d", n.ID)
	}

	// Tracking and the application's scope read the same metadata.
	maxID, ok, err := r.MaxTrackingID(ctx, "Up")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, int64(5), maxID)
	other := openOn(t, "Other", uri, nil)
	t.Cleanup(func() { _ = other.Close() })
	or, err := other.ApplicationRecorder(ctx)
	require.NoError(t, err)
	ons, err := or.SelectNotifications(ctx, recorder.NotificationQuery{Limit: 10})
	require.NoError(t, err)
	assert.Empty(t, ons, "another application's log holds none of these events")

	// What another client reads: the members of the official instrumentation.
	cfg, err := esdbclient.ParseConnectionString(uri)
	require.NoError(t, err)
	c, err := esdbclient.NewClient(cfg)
	require.NoError(t, err)
	defer c.Close()
	stream, err := c.ReadStream(ctx, tracked, esdbclient.ReadStreamOptions{}, 1)
	require.NoError(t, err)
	defer stream.Close()
	ev, err := stream.Recv()
	require.NoError(t, err)
	var md map[string]any
	require.NoError(t, json.Unmarshal(ev.Event.UserMetadata, &md))
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", md["$traceId"])
	assert.Equal(t, "00f067aa0ba902b7", md["$spanId"])
	assert.Equal(t, "Traced", md["app"])
	assert.Contains(t, md, "tracking")
}
