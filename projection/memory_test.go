package projection_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func TestMemoryView(t *testing.T) {
	ctx := t.Context()
	v := projection.NewMemoryView()
	n := 0
	incr := func(id int64) error {
		return v.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: id}, func() error { n++; return nil })
	}
	require.NoError(t, incr(1))
	require.NoError(t, incr(3), "gaps are allowed")
	require.ErrorIs(t, incr(3), recorder.ErrIntegrity)
	require.ErrorIs(t, incr(2), recorder.ErrIntegrity)
	assert.Equal(t, 2, n, "fn does not run for a position already processed")

	boom := errors.New("boom")
	err := v.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: 4}, func() error { return boom })
	require.ErrorIs(t, err, boom)
	ok, err := v.HasTrackingID(ctx, "up", 4)
	require.NoError(t, err)
	assert.False(t, ok, "a failed update records no tracking")

	id, ok, err := v.MaxTrackingID(ctx, "up")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.EqualValues(t, 3, id)
	_, ok, _ = v.MaxTrackingID(ctx, "other")
	assert.False(t, ok)

	require.NoError(t, v.Wait(ctx, "up", 3, time.Second))
	assert.ErrorIs(t, v.Wait(ctx, "up", 4, 10*time.Millisecond), recorder.ErrTimeout)
	done := make(chan error, 1)
	go func() { done <- v.Wait(ctx, "up", 5, 10*time.Second) }()
	require.NoError(t, v.InsertTracking(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: 5}))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return within 10s after the position was reached")
	}
}
