package sqlrows

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// fakeDB is a database of tracking positions whose transactions copy the
// positions and write them back at commit.
type fakeDB struct {
	mu        sync.Mutex // Wait reads from another goroutine
	positions map[string]int64
	txs       int
}

type fakeTx struct{ positions map[string]int64 }

func (d *fakeDB) tracker() *Tracker[*fakeTx] {
	load := func(_ context.Context, tx *fakeTx, name string) (int64, bool, error) {
		id, ok := tx.positions[name]
		return id, ok, nil
	}
	return NewTracker(
		func(_ context.Context, _ string, fn func(*fakeTx) error) error {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.txs++
			tx := &fakeTx{positions: maps.Clone(d.positions)}
			if err := fn(tx); err != nil {
				return err
			}
			d.positions = tx.positions
			return nil
		},
		load,
		func(ctx context.Context, name string) (int64, bool, error) {
			d.mu.Lock()
			defer d.mu.Unlock()
			return load(ctx, &fakeTx{positions: d.positions}, name)
		},
		func(_ context.Context, tx *fakeTx, t recorder.Tracking) error {
			if last, ok := tx.positions[t.ApplicationName]; ok && t.NotificationID <= last {
				return TrackingNotAdvanced(t)
			}
			tx.positions[t.ApplicationName] = t.NotificationID
			return nil
		})
}

func TestTrackerUpdate(t *testing.T) {
	ctx := context.Background()
	db := &fakeDB{positions: map[string]int64{}}
	k := db.tracker()
	ran := 0
	fn := func(context.Context, *fakeTx) error { ran++; return nil }
	require.NoError(t, k.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: 1}, fn))
	assert.ErrorIs(t, k.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: 1}, fn), recorder.ErrIntegrity)
	assert.Equal(t, 1, ran, "fn does not run for a record that does not advance")

	boom := errors.New("boom")
	err := k.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: 2}, func(context.Context, *fakeTx) error { return boom })
	assert.ErrorIs(t, err, boom)
	id, ok, err := k.MaxTrackingID(ctx, "up")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, int64(1), id, "a failed update records no position")

	reached, err := k.HasTrackingID(ctx, "up", 1)
	require.NoError(t, err)
	assert.True(t, reached)
	require.NoError(t, k.Wait(ctx, "up", 1, time.Minute))
}

func TestTrackerBatch(t *testing.T) {
	ctx := context.Background()
	db := &fakeDB{positions: map[string]int64{"up": 3}}
	k := db.tracker()
	err := k.Batch(ctx, func(ctx context.Context) error {
		require.NoError(t, k.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: 4}, nil))
		require.NoError(t, k.Batch(ctx, func(ctx context.Context) error {
			return k.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: 5}, nil)
		}), "a nested batch joins the open one")
		id, _, err := k.MaxTrackingID(ctx, "up")
		require.NoError(t, err)
		assert.Equal(t, int64(3), id, "inside a batch, the batch's transaction is read")
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"up": 5}, db.positions)
	assert.Equal(t, 1, db.txs, "one transaction for the batch")

	boom := errors.New("boom")
	err = k.Batch(ctx, func(ctx context.Context) error {
		require.NoError(t, k.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: 6}, nil))
		return boom
	})
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, map[string]int64{"up": 5}, db.positions, "a failed batch records nothing")
}

func TestTrackerWaitWakesOnUpdate(t *testing.T) {
	ctx := context.Background()
	db := &fakeDB{positions: map[string]int64{}}
	k := db.tracker()
	done := make(chan error, 1)
	go func() { done <- k.Wait(ctx, "up", 1, time.Hour) }()
	require.NoError(t, k.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: 1}, nil))
	require.NoError(t, <-done)
}
