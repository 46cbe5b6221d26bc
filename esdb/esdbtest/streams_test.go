package esdbtest_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendExpectedRevisions(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	name := streamName()

	r, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, evs(1)...)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), r.NextExpectedVersion)
	assert.Positive(t, r.CommitPosition)
	assert.Equal(t, r.CommitPosition, r.PreparePosition)

	r2, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(0)}, evs(2)...)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), r2.NextExpectedVersion)
	assert.Greater(t, r2.CommitPosition, r.CommitPosition)

	_, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.StreamExists{}}, evs(1)...)
	require.NoError(t, err)
	_, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, evs(1)...)
	require.NoError(t, err)

	for _, exp := range []esdb.ExpectedRevision{esdb.NoStream{}, esdb.Revision(1), esdb.Revision(99)} {
		_, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: exp}, evs(1)...)
		require.Error(t, err)
		assert.Equal(t, esdb.ErrorCodeWrongExpectedVersion, errCode(err), "%T", exp)
	}
	_, err = c.AppendToStream(ctx, streamName(), esdb.AppendToStreamOptions{ExpectedRevision: esdb.StreamExists{}}, evs(1)...)
	assert.Equal(t, esdb.ErrorCodeWrongExpectedVersion, errCode(err))
	_, err = c.AppendToStream(ctx, streamName(), esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(0)}, evs(1)...)
	assert.Equal(t, esdb.ErrorCodeWrongExpectedVersion, errCode(err))

	got, err := readStream(t, c, name, esdb.ReadStreamOptions{}, 100)
	require.NoError(t, err)
	require.Len(t, got, 5)
	for i, e := range got {
		assert.Equal(t, uint64(i), e.Event.EventNumber)
		assert.Equal(t, name, e.Event.StreamID)
		assert.Equal(t, "TestEvent", e.Event.EventType)
		assert.Equal(t, "application/json", e.Event.ContentType)
		assert.WithinDuration(t, time.Now(), e.Event.CreatedDate, time.Minute)
		assert.Equal(t, e.Event.Position.Commit, e.Event.Position.Prepare)
	}
}

func TestAppendIdempotent(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	name := streamName()
	batch := evs(3)
	r1, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, batch...)
	require.NoError(t, err)
	r2, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, batch...)
	require.NoError(t, err)
	assert.Equal(t, r1.CommitPosition, r2.CommitPosition)
	r3, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, batch...)
	require.NoError(t, err)
	assert.Equal(t, r1.CommitPosition, r3.CommitPosition)

	// A partial match is a conflict.
	_, err = c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, batch[0], ev("X", "{}"))
	assert.Equal(t, esdb.ErrorCodeWrongExpectedVersion, errCode(err))

	// Ids are per stream: the same id in another stream is a new event.
	other := streamName()
	_, err = c.AppendToStream(ctx, other, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, batch[0])
	require.NoError(t, err)

	got, err := readStream(t, c, name, esdb.ReadStreamOptions{}, 100)
	require.NoError(t, err)
	assert.Len(t, got, 3)
}

func TestAppendValidation(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	big := esdb.EventData{EventType: "Big", ContentType: esdb.ContentTypeBinary, Data: bytes.Repeat([]byte{1}, 1<<20+1)}
	_, err := c.AppendToStream(ctx, streamName(), esdb.AppendToStreamOptions{}, big)
	require.Error(t, err)
	assert.Equal(t, esdb.ErrorCodeUnknown, errCode(err))

	// 1 MiB exactly is accepted.
	ok := esdb.EventData{EventType: "Big", ContentType: esdb.ContentTypeBinary, Data: bytes.Repeat([]byte{1}, 1<<20)}
	_, err = c.AppendToStream(ctx, streamName(), esdb.AppendToStreamOptions{}, ok)
	require.NoError(t, err)

	r, err := c.AppendToStream(ctx, streamName(), esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}})
	require.NoError(t, err)
	assert.Zero(t, r.CommitPosition)
}

func TestReadStreamDirectionsAndCounts(t *testing.T) {
	_, c := startClient(t)
	name := streamName()
	_, err := c.AppendToStream(ctxT(t), name, esdb.AppendToStreamOptions{}, evs(10)...)
	require.NoError(t, err)

	revs := func(es []*esdb.ResolvedEvent) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.Event.EventNumber)
		}
		return out
	}
	cases := []struct {
		name  string
		opts  esdb.ReadStreamOptions
		count uint64
		want  []uint64
	}{
		{"forwards start", esdb.ReadStreamOptions{From: esdb.Start{}}, 3, []uint64{0, 1, 2}},
		{"forwards revision", esdb.ReadStreamOptions{From: esdb.Revision(8)}, 10, []uint64{8, 9}},
		{"forwards end", esdb.ReadStreamOptions{From: esdb.End{}}, 10, nil},
		{"backwards end", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 3, []uint64{9, 8, 7}},
		{"backwards revision", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(1)}, 10, []uint64{1, 0}},
		{"backwards start", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Start{}}, 10, []uint64{0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readStream(t, c, name, tc.opts, tc.count)
			require.NoError(t, err)
			assert.Equal(t, tc.want, revs(got))
		})
	}

	_, err = readStream(t, c, streamName(), esdb.ReadStreamOptions{}, 10)
	assert.Equal(t, esdb.ErrorCodeResourceNotFound, errCode(err))
}

func TestReadAll(t *testing.T) {
	_, c := startClient(t)
	ctx := ctxT(t)
	name := streamName()
	_, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{}, evs(5)...)
	require.NoError(t, err)

	all, err := readAll(t, c, esdb.ReadAllOptions{From: esdb.Start{}}, 1000)
	require.NoError(t, err)
	require.Greater(t, len(all), 5)
	var prev uint64
	for _, e := range all {
		assert.Greater(t, e.Event.Position.Commit, prev)
		prev = e.Event.Position.Commit
	}
	assert.Equal(t, "$users", all[2].Event.StreamID, "seed records come first")

	mine := all[len(all)-5:]
	for i, e := range mine {
		assert.Equal(t, name, e.Event.StreamID)
		assert.Equal(t, uint64(i), e.Event.EventNumber)
	}

	// Forwards from a position includes it.
	from := mine[2].Event.Position
	got, err := readAll(t, c, esdb.ReadAllOptions{From: from}, 10)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, from, got[0].Event.Position)

	// Backwards from a position excludes it.
	got, err = readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: from}, 2)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, mine[1].Event.Position, got[0].Event.Position)

	got, err = readAll(t, c, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	require.NoError(t, err)
	assert.Equal(t, mine[4].Event.Position, got[0].Event.Position)

	got, err = readAll(t, c, esdb.ReadAllOptions{From: esdb.End{}}, 10)
	require.NoError(t, err)
	assert.Empty(t, got)

	// A position inside a record is invalid.
	_, err = readAll(t, c, esdb.ReadAllOptions{From: esdb.Position{Commit: from.Commit + 1, Prepare: from.Commit + 1}}, 10)
	assert.Equal(t, esdb.ErrorCodeUnknown, errCode(err))
}

func TestConcurrentAppendersOneStream(t *testing.T) {
	_, c := startClient(t)
	name := streamName()
	const writers, each = 4, 25
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				_, err := c.AppendToStream(ctxT(t), name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, evs(1)...)
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	got, err := readStream(t, c, name, esdb.ReadStreamOptions{}, 1000)
	require.NoError(t, err)
	require.Len(t, got, writers*each)
	for i, e := range got {
		assert.Equal(t, uint64(i), e.Event.EventNumber)
	}

	// With an expected revision, exactly one of the racers wins each slot.
	name2 := streamName()
	var mu sync.Mutex
	wins := 0
	for range writers {
		wg.Go(func() {
			_, err := c.AppendToStream(ctxT(t), name2, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, evs(1)...)
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else {
				assert.Equal(t, esdb.ErrorCodeWrongExpectedVersion, errCode(err))
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, wins)
}

func TestServerFeaturesAndDiscover(t *testing.T) {
	srv := startServer(t)
	cfg, err := esdb.ParseConnectionString("esdb+discover://" + srv.Addr().String() + "?tls=false")
	require.NoError(t, err)
	c, err := esdb.NewClient(cfg)
	require.NoError(t, err)
	defer c.Close()
	name := streamName()
	_, err = c.AppendToStream(ctxT(t), name, esdb.AppendToStreamOptions{}, evs(1)...)
	require.NoError(t, err)
	got, err := readStream(t, c, name, esdb.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	assert.Len(t, got, 1)
	assert.True(t, strings.HasPrefix(srv.URI(), "esdb://127.0.0.1:"))
	_ = uuid.Nil
}
