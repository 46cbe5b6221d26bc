package follow_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/memory"
)

type (
	handledEvent struct{ N int }
	otherEvent   struct{ N int }
)

// With HandledTopics, notifications of other topics are not decoded (an
// undecodable one does not fail the follower) nor handed to the handler,
// and the follower's position still reaches the last notification.
func TestHandledTopicsSkipOthersUndecoded(t *testing.T) {
	ctx := t.Context()
	types := eventsourcing.NewTypes()
	eventsourcing.MustRegister[handledEvent](types, "test:Handled")
	eventsourcing.MustRegister[otherEvent](types, "test:Other")
	mapper := eventsourcing.NewMapper(types)
	up := memory.NewApplicationRecorder()
	var stored []recorder.StoredEvent
	for i := range 9 {
		var data any = handledEvent{N: i}
		if i%3 != 0 {
			data = otherEvent{N: i}
		}
		s, err := mapper.FromEvent(eventsourcing.Event{OriginatorID: uuid.New(), OriginatorVersion: 1, Timestamp: eventsourcing.Now(), Data: data})
		require.NoError(t, err)
		if i == 4 {
			s.State = []byte("not JSON: an other topic's state is never decoded")
		}
		stored = append(stored, s)
	}
	ids, err := up.InsertEvents(ctx, stored)
	require.NoError(t, err)
	tracker := memory.NewTrackingRecorder()
	var (
		mu  sync.Mutex
		got []int
	)
	f, err := follow.New(follow.Config{
		Name: "Handled", Upstream: "Up", Source: up, Mapper: mapper, Tracker: tracker,
		HandledTopics: []string{"test:Handled"},
		Handler: follow.HandlerFunc(func(_ context.Context, e eventsourcing.Event, _ recorder.Tracking) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, e.Data.(handledEvent).N)
			return false, nil
		}),
	})
	require.NoError(t, err)
	n, err := f.CatchUp(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n, "handed to the handler")
	assert.Equal(t, []int{0, 3, 6}, got)
	pos, ok, err := tracker.MaxTrackingID(ctx, "Up")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, ids[len(ids)-1], pos, "the positions of what was skipped are recorded")
}
