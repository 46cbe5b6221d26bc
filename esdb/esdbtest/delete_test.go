package esdbtest_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSoftDeleteAndRecreate(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	name := streamName()
	_, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(3)...)
	require.NoError(t, err)

	_, err = c.DeleteStream(ctx, name, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(5)})
	require.Error(t, err)

	d, err := c.DeleteStream(ctx, name, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(2)})
	require.NoError(t, err)
	assert.Positive(t, d.Position.Commit)
	assert.Equal(t, d.Position.Commit, d.Position.Prepare)

	_, err = readStream(t, c, name, esdb.ReadStreamOptions{}, 10)
	assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(err))

	// Deleted events stay in $all until a scavenge.
	all, err := readAll(t, c, esdb.ReadAllOptions{}, 1000)
	require.NoError(t, err)
	n := 0
	for _, e := range all {
		if e.Event.StreamID == name {
			n++
		}
	}
	assert.Equal(t, 3, n)

	// Appending again continues the numbering and hides the old events.
	r, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, evs(1)...)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), r.NextExpectedVersion)
	got, err := readStream(t, c, name, esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, uint64(3), got[0].Event.EventNumber)
	meta, err := c.GetStreamMetadata(ctx, name, esdb.ReadStreamOptions{})
	require.NoError(t, err)
	require.NotNil(t, meta.TruncateBefore())
	assert.Equal(t, uint64(3), *meta.TruncateBefore())

	// Deleting a stream that never existed fails.
	_, err = c.DeleteStream(ctx, streamName(), esdb.DeleteStreamOptions{})
	require.Error(t, err)
}

func TestTombstone(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	name := streamName()
	_, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(2)...)
	require.NoError(t, err)
	r, err := c.TombstoneStream(ctx, name, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(1)})
	require.NoError(t, err)
	assert.Positive(t, r.Position.Commit)

	_, err = readStream(t, c, name, esdb.ReadStreamOptions{}, 10)
	assert.Equal(t, esdb.ErrorCodeStreamDeleted, errCode(err))
	_, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(1)...)
	assert.Equal(t, esdb.ErrorCodeStreamDeleted, errCode(err))
	_, err = c.DeleteStream(ctx, name, esdb.DeleteStreamOptions{})
	assert.Equal(t, esdb.ErrorCodeStreamDeleted, errCode(err))
	_, err = c.TombstoneStream(ctx, name, esdb.TombstoneStreamOptions{})
	assert.Equal(t, esdb.ErrorCodeStreamDeleted, errCode(err))

	all, err := readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	require.NoError(t, err)
	assert.Equal(t, "$streamDeleted", all[0].Event.EventType)
	assert.Equal(t, uint64(1<<63-1), all[0].Event.EventNumber)
}

func TestStreamMetadata(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	name := streamName()
	_, err := c.GetStreamMetadata(ctx, name, esdb.ReadStreamOptions{})
	assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(err))

	m := esdb.StreamMetadata{}
	m.SetMaxCount(2)
	m.SetCacheControl(10 * time.Second)
	m.AddCustomProperty("owner", "me")
	_, err = c.SetStreamMetadata(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, m)
	require.NoError(t, err)
	m.SetMaxCount(3)
	_, err = c.SetStreamMetadata(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(0)}, m)
	require.NoError(t, err)

	got, err := c.GetStreamMetadata(ctx, name, esdb.ReadStreamOptions{})
	require.NoError(t, err)
	assert.Equal(t, uint64(3), *got.MaxCount())
	assert.Equal(t, "me", got.CustomProperty("owner"))

	// stream_exists passes on a stream that has only metadata.
	_, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.StreamExists{}}, evs(5)...)
	require.NoError(t, err)
	evsGot, err := readStream(t, c, name, esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	require.Len(t, evsGot, 3)
	assert.Equal(t, uint64(2), evsGot[0].Event.EventNumber)
	back, err := readStream(t, c, name, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 10)
	require.NoError(t, err)
	assert.Len(t, back, 3)

	// $$ streams are system streams holding the verbatim JSON.
	raw, err := readStream(t, c, "$$"+name, esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	require.Len(t, raw, 1)
	assert.Equal(t, "$metadata", raw[0].Event.EventType)
	var obj map[string]any
	require.NoError(t, json.Unmarshal(raw[0].Event.Data, &obj))
	assert.Equal(t, float64(3), obj["$maxCount"])
}

func TestMaxAgeAndTruncateBefore(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	name := streamName()
	_, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(4)...)
	require.NoError(t, err)
	m := esdb.StreamMetadata{}
	m.SetTruncateBefore(2)
	_, err = c.SetStreamMetadata(ctx, name, esdb.AppendToStreamOptions{}, m)
	require.NoError(t, err)
	got, err := readStream(t, c, name, esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, uint64(2), got[0].Event.EventNumber)

	// $maxAge of one second: events created before now-1s disappear, and
	// the emptied stream answers no events rather than not-found. The
	// events are old enough once a second has passed on the server clock.
	name2 := streamName()
	_, err = c.AppendToStream(ctx, name2, esdb.AppendToStreamOptions{}, evs(2)...)
	require.NoError(t, err)
	m2 := esdb.StreamMetadata{}
	m2.SetMaxAge(time.Second)
	_, err = c.SetStreamMetadata(ctx, name2, esdb.AppendToStreamOptions{}, m2)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := readStream(t, c, name2, esdb.ReadStreamOptions{}, 10)
		return err == nil && len(got) == 0
	}, 10*time.Second, 100*time.Millisecond)
}

func TestSystemStreams(t *testing.T) {
	_, c := startClient(t)
	got, err := readStream(t, c, "$users", esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	require.NotEmpty(t, got)
	assert.Equal(t, "$User", got[0].Event.EventType)
	assert.Positive(t, got[0].Event.Position.Commit)
}
