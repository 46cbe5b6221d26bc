package sqlite_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/sqlite"
)

// A topic filter up to MaxTopics works; a larger one fails with a message
// that names the cap, not with SQLite's "too many SQL variables".
func TestTopicFilterCap(t *testing.T) {
	f, _ := openFile(t)
	rec, err := f.ApplicationRecorder(t.Context())
	require.NoError(t, err)
	_, err = rec.InsertEvents(t.Context(), []recorder.StoredEvent{ev("a", 1)})
	require.NoError(t, err)
	topics := func(n int) []string {
		ts := make([]string, n)
		for i := range ts {
			ts[i] = fmt.Sprintf("topic-%d", i)
		}
		ts[n-1] = "t"
		return ts
	}

	ns, err := rec.SelectNotifications(t.Context(), recorder.NotificationQuery{Limit: 10, Topics: topics(sqlite.MaxTopics)})
	require.NoError(t, err)
	assert.Len(t, ns, 1)

	for _, n := range []int{sqlite.MaxTopics + 1, 40000} {
		_, err = rec.SelectNotifications(t.Context(), recorder.NotificationQuery{Limit: 10, Topics: topics(n)})
		require.ErrorIs(t, err, recorder.ErrProgramming)
		assert.Contains(t, err.Error(), fmt.Sprintf("at most %d topics in a filter, got %d", sqlite.MaxTopics, n))
		assert.NotContains(t, err.Error(), "SQL variables")
		_, err = rec.Subscribe(t.Context(), recorder.Start(), topics(n))
		require.ErrorIs(t, err, recorder.ErrProgramming)
	}
}
