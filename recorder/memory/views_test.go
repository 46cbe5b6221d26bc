package memory_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/memory"
)

// AppendEventViews selects what SelectEvents selects, for every query, and
// appends it after what dst holds.
func TestAppendEventViewsSelectsAsSelectEvents(t *testing.T) {
	ctx := t.Context()
	r := memory.NewApplicationRecorder()
	id, other := uuid.NewString(), uuid.NewString()
	for v := int64(1); v <= 12; v++ {
		_, err := r.InsertEvents(ctx, []recorder.StoredEvent{
			{OriginatorID: id, OriginatorVersion: v, Topic: fmt.Sprint("topic", v%3), State: fmt.Appendf(nil, "state %d", v)},
			{OriginatorID: other, OriginatorVersion: v, Topic: "other", State: []byte("other")},
		})
		require.NoError(t, err)
	}
	for _, q := range []recorder.EventQuery{
		{},
		{Desc: true},
		{Limit: 5},
		{Limit: 5, Desc: true},
		{After: recorder.Bounded(4)},
		{UpTo: recorder.Bounded(7)},
		{After: recorder.Bounded(2), UpTo: recorder.Bounded(9), Limit: 3},
		{After: recorder.Bounded(2), UpTo: recorder.Bounded(9), Limit: 3, Desc: true},
		{After: recorder.Bounded(12)},
		{UpTo: recorder.Bounded(0)},
	} {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			want, err := r.SelectEvents(ctx, id, q)
			require.NoError(t, err)
			head := recorder.StoredEvent{OriginatorID: "already there"}
			got, err := r.AppendEventViews(ctx, []recorder.StoredEvent{head}, id, q)
			require.NoError(t, err)
			require.NotEmpty(t, got)
			assert.Equal(t, head, got[0], "what dst held stays first")
			assert.Equal(t, len(want), len(got)-1)
			for i := range want {
				assert.Equal(t, want[i], got[i+1])
			}
		})
	}
	got, err := r.AppendEventViews(ctx, nil, uuid.NewString(), recorder.EventQuery{})
	require.NoError(t, err)
	assert.Empty(t, got, "an unknown originator selects nothing")
}

// A view is capped at its state, so that appending to it cannot write into
// the store, and an insert after the views were taken changes none of them.
func TestAppendEventViewsAreStable(t *testing.T) {
	ctx := t.Context()
	r := memory.NewAggregateRecorder()
	id := uuid.NewString()
	_, err := r.InsertEvents(ctx, []recorder.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "t", State: []byte("first")}})
	require.NoError(t, err)
	got, err := r.AppendEventViews(ctx, nil, id, recorder.EventQuery{})
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, len(got[0].State), cap(got[0].State))
	_ = append(got[0].State, "more"...)
	_, err = r.InsertEvents(ctx, []recorder.StoredEvent{{OriginatorID: id, OriginatorVersion: 2, Topic: "t", State: []byte("second")}})
	require.NoError(t, err)
	again, err := r.SelectEvents(ctx, id, recorder.EventQuery{})
	require.NoError(t, err)
	require.Len(t, again, 2)
	assert.Equal(t, "first", string(got[0].State))
	assert.Equal(t, "first", string(again[0].State))
	assert.Equal(t, "second", string(again[1].State))
}

// A closed factory's recorder refuses views as it refuses selects.
func TestAppendEventViewsAfterClose(t *testing.T) {
	f := memory.NewFactory()
	r, err := f.AggregateRecorder(t.Context(), recorder.PurposeEvents)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, err = r.(*memory.Recorder).AppendEventViews(t.Context(), nil, uuid.NewString(), recorder.EventQuery{})
	assert.ErrorIs(t, err, recorder.ErrInterface)
}
