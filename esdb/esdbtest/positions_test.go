package esdbtest_test

import (
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPositionsStepByRecordSize checks that the events of one append lie
// one after another in $all as on a real node: each event's position is
// the previous one's plus the size of the previous one's record in a real
// node's transaction log (88 bytes, the stream name and event type each
// after its length as a ULEB128, data, metadata; the content type is a
// flag), and the append answers with the last event's position, also when
// it is repeated.
func TestPositionsStepByRecordSize(t *testing.T) {
	_, c := startClient(t)
	stream := strings.Repeat("s", 130) // a 2-byte length
	events := []esdb.EventData{
		{EventID: uuid.New(), EventType: "a", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)},
		{EventID: uuid.New(), EventType: "Größe", ContentType: esdb.ContentTypeBinary, Data: make([]byte, 300), Metadata: []byte(`{"m":1}`)},
		{EventID: uuid.New(), EventType: strings.Repeat("t", 200), ContentType: esdb.ContentTypeBinary},
		{EventID: uuid.New(), EventType: "b", ContentType: esdb.ContentTypeBinary},
	}
	sizes := []uint64{
		88 + 132 + 2 + 2,
		88 + 132 + 8 + 300 + 7, // "Größe" is 7 bytes of UTF-8
		88 + 132 + 202,
	}
	res, err := c.AppendToStream(ctxT(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, events...)
	require.NoError(t, err)
	got, err := readStream(t, c, stream, esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	require.Len(t, got, len(events))
	for i, size := range sizes {
		p, next := got[i].Event.Position, got[i+1].Event.Position
		assert.Equal(t, p.Commit, p.Prepare)
		assert.Equal(t, size, next.Commit-p.Commit, "record %d", i)
	}
	last := got[len(got)-1].Event.Position
	assert.Equal(t, last.Commit, res.CommitPosition)
	assert.Equal(t, last.Prepare, res.PreparePosition)

	again, err := c.AppendToStream(ctxT(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, events...)
	require.NoError(t, err)
	assert.Equal(t, res.CommitPosition, again.CommitPosition, "an idempotent repeat answers the original last position")

	all, err := readAll(t, c, esdb.ReadAllOptions{}, 1<<20)
	require.NoError(t, err)
	var inAll []uint64
	for _, e := range all {
		if e.Event.StreamID == stream {
			inAll = append(inAll, e.Event.Position.Commit)
		}
	}
	require.Len(t, inAll, len(events))
	for i := range got {
		assert.Equal(t, got[i].Event.Position.Commit, inAll[i])
	}
}

// TestRecreatedStreamMetadataFollowsTheEvents checks that appending to a
// soft-deleted stream writes the events first and then the metadata that
// moves its truncation, as a real node does: the events of the append stay
// contiguous and the append answers with the last event's position.
func TestRecreatedStreamMetadataFollowsTheEvents(t *testing.T) {
	_, c := startClient(t)
	stream := streamName()
	_, err := c.AppendToStream(ctxT(t), stream, esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)
	_, err = c.DeleteStream(ctxT(t), stream, esdb.DeleteStreamOptions{})
	require.NoError(t, err)
	res, err := c.AppendToStream(ctxT(t), stream, esdb.AppendToStreamOptions{}, evs(2)...)
	require.NoError(t, err)

	all, err := readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 3)
	require.NoError(t, err)
	require.Len(t, all, 3)
	assert.Equal(t, "$$"+stream, all[0].Event.StreamID)
	assert.Equal(t, "$metadata", all[0].Event.EventType)
	assert.Equal(t, stream, all[1].Event.StreamID)
	assert.Equal(t, uint64(2), all[1].Event.EventNumber)
	assert.Equal(t, res.CommitPosition, all[1].Event.Position.Commit)
	assert.Equal(t, stream, all[2].Event.StreamID)
}
