package memory

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// TestChainsAgainstAModel inserts versions out of order, in batches of several
// originators, and checks every query shape against a sorted model of each
// originator's versions: the chains of records must stay in version order.
func TestChainsAgainstAModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := NewApplicationRecorder()
	ctx := t.Context()
	ids := []string{uuid.NewString(), uuid.NewString(), "text-id", ""}
	model := map[string][]int64{}
	for range 300 {
		var batch []recorder.StoredEvent
		for range 1 + rng.IntN(4) {
			id := ids[rng.IntN(len(ids))]
			v := int64(rng.IntN(60))
			batch = append(batch, recorder.StoredEvent{OriginatorID: id, OriginatorVersion: v,
				Topic: fmt.Sprint("t", v%3), State: fmt.Appendf(nil, "%s/%d", id, v)})
		}
		ok := true
		seen := map[string]bool{}
		for _, e := range batch {
			k := fmt.Sprint(e.OriginatorID, "/", e.OriginatorVersion)
			if seen[k] || slices.Contains(model[e.OriginatorID], e.OriginatorVersion) {
				ok = false
			}
			seen[k] = true
		}
		nids, err := r.InsertEvents(ctx, batch)
		if !ok {
			require.ErrorIs(t, err, recorder.ErrIntegrity)
			continue
		}
		require.NoError(t, err)
		require.Len(t, nids, len(batch))
		for _, e := range batch {
			model[e.OriginatorID] = append(model[e.OriginatorID], e.OriginatorVersion)
			slices.Sort(model[e.OriginatorID])
		}
	}
	bounds := []recorder.Bound{{}, recorder.Bounded(-1), recorder.Bounded(10), recorder.Bounded(30), recorder.Bounded(70)}
	for _, id := range ids {
		for _, after := range bounds {
			for _, upTo := range bounds {
				for _, desc := range []bool{false, true} {
					for _, limit := range []int{0, 1, 3, 100} {
						var want []int64
						for _, v := range model[id] {
							a, hasA := after.Value()
							u, hasU := upTo.Value()
							if (!hasA || v > a) && (!hasU || v <= u) {
								want = append(want, v)
							}
						}
						if desc {
							slices.Reverse(want)
						}
						if limit > 0 && len(want) > limit {
							want = want[:limit]
						}
						got, err := r.SelectEvents(ctx, id, recorder.EventQuery{After: after, UpTo: upTo, Desc: desc, Limit: limit})
						require.NoError(t, err)
						var versions []int64
						for _, e := range got {
							versions = append(versions, e.OriginatorVersion)
							require.Equal(t, id, e.OriginatorID)
							require.Equal(t, fmt.Sprint("t", e.OriginatorVersion%3), e.Topic)
							require.Equal(t, fmt.Sprintf("%s/%d", id, e.OriginatorVersion), string(e.State))
						}
						require.Equal(t, want, versions, "id %q after %v upTo %v desc %v limit %d", id, after, upTo, desc, limit)
					}
				}
			}
		}
	}
	all, err := r.SelectNotifications(ctx, recorder.NotificationQuery{Limit: 10000, Topics: []string{"t1", "unknown"}})
	require.NoError(t, err)
	n := 0
	for _, vs := range model {
		for _, v := range vs {
			if v%3 == 1 {
				n++
			}
		}
	}
	require.Len(t, all, n)
	for _, note := range all {
		require.Equal(t, "t1", note.Topic)
		require.Equal(t, fmt.Sprintf("%s/%d", note.OriginatorID, note.OriginatorVersion), string(note.State))
	}
}

func TestArenaLargeAndSmall(t *testing.T) {
	var a arena
	big := make([]byte, arenaMax+1)
	big[0] = 7
	sb := a.add(big)
	small := a.addString("hello")
	require.Equal(t, big, a.bytes(sb))
	require.Equal(t, "hello", a.string(small))
	require.NotEqual(t, sb.chunk, small.chunk, "a large state has a chunk of its own")
	for i := range 5000 { // across chunks
		s := a.add(fmt.Appendf(nil, "state %d", i))
		require.Equal(t, fmt.Sprintf("state %d", i), string(a.bytes(s)))
	}
	require.Equal(t, big, a.bytes(sb))
	require.Equal(t, "hello", a.string(small))
}
