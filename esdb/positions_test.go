package esdb

import (
	"strings"
	"testing"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func TestStringSize(t *testing.T) {
	for n, want := range map[int]uint64{0: 1, 1: 2, 127: 128, 128: 130, 16383: 16385, 16384: 16387} {
		assert.Equal(t, want, stringSize(n), "n=%d", n)
	}
}

func TestRecordSize(t *testing.T) {
	// A 36-byte stream name, a 22-byte type, 100 bytes of data, 2 of
	// metadata: 88 + 37 + 23 + 100 + 2.
	e := esdbclient.EventData{EventType: "example:Dog.TrickAdded", Data: make([]byte, 100), Metadata: []byte("{}")}
	assert.Equal(t, uint64(250), recordSize(stringSize(36), &e))
}

func TestDerivePositions(t *testing.T) {
	data := []esdbclient.EventData{
		{EventType: "a", Data: make([]byte, 10)},
		{EventType: "bb", Metadata: make([]byte, 3)},
		{EventType: "c"},
	}
	ids := make([]int64, 3)
	require.True(t, derivePositions("s", data, 10_000, ids))
	// Each record is 88 + 2 (stream) + type + data + metadata.
	assert.Equal(t, []int64{10_000 - 96 - 102, 10_000 - 96, 10_000}, ids)

	// A stream name the server would not store as sent.
	assert.False(t, derivePositions("s\xff", data, 10_000, ids))
	// Positions that would not be positive.
	assert.False(t, derivePositions("s", data, 150, ids))
	// A batch whose span crosses a chunk's start.
	assert.False(t, derivePositions("s", data, chunkSize+50, ids))
	// One that starts a chunk does not cross it.
	assert.True(t, derivePositions("s", data, chunkSize+198, ids))
	assert.Equal(t, int64(chunkSize), ids[0])
}

// TestDerivedPositionsMatchTheLog appends batches of every shape of name
// and payload, and compares the ids InsertEvents returns, derived after
// the first batch, with the positions read from the stream and from $all.
func TestDerivedPositionsMatchTheLog(t *testing.T) {
	f := openFactory(t)
	ar, err := f.ApplicationRecorder(t.Context())
	require.NoError(t, err)
	r := ar.(*Recorder)

	batches := []struct {
		name   string
		stream string
		topics []string
		sizes  []int
	}{
		{"uuids", uuid.NewString(), []string{"example:Dog.Registered", "example:Dog.TrickAdded"}, []int{120, 130}},
		{"empty state", uuid.NewString(), []string{"t", "t", "t"}, []int{0, 0, 1}},
		{"long names", strings.Repeat("n", 200), []string{strings.Repeat("T", 130), strings.Repeat("U", 17000)}, []int{5, 6}},
		{"multi-byte names", "Hündin-🐕", []string{"Trick→Added", "Ä"}, []int{300, 70000}},
		{"ten", uuid.NewString(), []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
	}
	for i, b := range batches {
		events := make([]recorder.StoredEvent, len(b.topics))
		for v := range events {
			events[v] = recorder.StoredEvent{OriginatorID: b.stream, OriginatorVersion: int64(v), Topic: b.topics[v],
				State: []byte(strings.Repeat("x", b.sizes[v%len(b.sizes)]))}
		}
		ids, err := r.InsertEvents(t.Context(), events)
		require.NoError(t, err, b.name)
		if i == 0 {
			assert.Equal(t, layoutExact, f.positions.state.Load(), "the first batch's read-back confirms the derivation")
		}
		read, err := r.readBack(t.Context(), "test", b.stream, 0, len(events))
		require.NoError(t, err)
		assert.Equal(t, read, ids, b.name)

		got, err := r.SelectNotifications(t.Context(), recorder.NotificationQuery{After: recorder.After(ids[0]), Inclusive: true, Limit: len(ids)})
		require.NoError(t, err)
		require.Len(t, got, len(ids), b.name)
		for v, n := range got {
			assert.Equal(t, ids[v], n.ID, "%s: event %d", b.name, v)
		}
	}
}

// TestPositionsAfterAnIdempotentRetry repeats an append with the same
// event ids, as the module's retry does: the server answers with the
// original last position, from which the same ids are derived.
func TestPositionsAfterAnIdempotentRetry(t *testing.T) {
	f := openFactory(t)
	r := &Recorder{f: f, application: true}
	stream := uuid.NewString()
	events := []recorder.StoredEvent{
		{OriginatorID: stream, OriginatorVersion: 0, Topic: "a", State: []byte("1")},
		{OriginatorID: stream, OriginatorVersion: 1, Topic: "b", State: []byte("22")},
	}
	data := eventData(events, f.scope.metadata, nil)
	c, err := f.Client()
	require.NoError(t, err)
	var lasts []uint64
	for range 2 {
		res, err := c.AppendToStream(t.Context(), stream, esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.NoStream{}}, data...)
		require.NoError(t, err)
		lasts = append(lasts, res.CommitPosition)
	}
	require.Equal(t, lasts[0], lasts[1])
	ids, err := r.positions(t.Context(), "test", stream, 0, data, lasts[1])
	require.NoError(t, err)
	read, err := r.readBack(t.Context(), "test", stream, 0, len(data))
	require.NoError(t, err)
	assert.Equal(t, read, ids)
}

// openFactory opens the module on a fresh esdbtest server.
func openFactory(t *testing.T) *Factory {
	t.Helper()
	cfg, err := ParseConfig(config.NewEnvFrom("", map[string]string{KeyURI: esdbtest.Start(t).URI()}, nil))
	require.NoError(t, err)
	f, err := OpenConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}
