package esdb_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Notification ids on EventStoreDB are commit positions, which are not
// 1, 2, 3: a start that is not a record's position reads from the first
// notification at or after it, so that sections such as "1,10" and each
// section's Next work as on every other backend.
func TestSelectFromAnyPosition(t *testing.T) {
	r := application(t, esdbtestURI(t))
	id := uuid.NewString()
	ids, err := r.InsertEvents(t.Context(), []recorder.StoredEvent{
		{OriginatorID: id, Topic: "a", State: []byte("0")},
		{OriginatorID: id, OriginatorVersion: 1, Topic: "b", State: []byte("1")},
		{OriginatorID: id, OriginatorVersion: 2, Topic: "c", State: []byte("2")},
	})
	require.NoError(t, err)
	require.Greater(t, ids[1]-ids[0], int64(1), "positions are not consecutive, so ids[0]+1 is no record's position")
	sel := func(q recorder.NotificationQuery) []int64 {
		t.Helper()
		q.Limit = max(q.Limit, 10)
		ns, err := r.SelectNotifications(t.Context(), q)
		require.NoError(t, err)
		got := []int64{}
		for _, n := range ns {
			got = append(got, n.ID)
		}
		return got
	}
	assert.Equal(t, ids, sel(recorder.NotificationQuery{After: recorder.After(0), Inclusive: true}))
	assert.Equal(t, ids, sel(recorder.NotificationQuery{After: recorder.After(1), Inclusive: true}))
	assert.Equal(t, ids, sel(recorder.NotificationQuery{After: recorder.After(ids[0]), Inclusive: true}))
	assert.Equal(t, ids[1:], sel(recorder.NotificationQuery{After: recorder.After(ids[0] + 1), Inclusive: true}))
	assert.Equal(t, ids[1:], sel(recorder.NotificationQuery{After: recorder.After(ids[1] - 1), Inclusive: true}))
	assert.Equal(t, ids[1:], sel(recorder.NotificationQuery{After: recorder.After(ids[0] + 1)}))
	assert.Equal(t, ids[2:], sel(recorder.NotificationQuery{After: recorder.After(ids[1])}))
	assert.Equal(t, ids[1:2], sel(recorder.NotificationQuery{After: recorder.After(ids[0] + 1), Inclusive: true, Stop: recorder.Bounded(ids[2] - 1)}))
	assert.Equal(t, []int64{ids[2]}, sel(recorder.NotificationQuery{After: recorder.After(ids[1] + 1), Inclusive: true, Topics: []string{"a", "c"}}))
	assert.Empty(t, sel(recorder.NotificationQuery{After: recorder.After(ids[2] + 1), Inclusive: true}))

	// The notification log's sections, from "1,10" on.
	log := eventsourcing.NewNotificationLog(r, 2)
	s, err := log.Section(t.Context(), "1,10")
	require.NoError(t, err)
	require.Len(t, s.Items, 2)
	assert.Equal(t, ids[:2], []int64{s.Items[0].ID, s.Items[1].ID})
	require.NotEmpty(t, s.Next)
	s, err = log.Section(t.Context(), s.Next)
	require.NoError(t, err)
	require.Len(t, s.Items, 1)
	assert.Equal(t, ids[2], s.Items[0].ID)
}
