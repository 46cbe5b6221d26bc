package sqlrows

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func TestConflict(t *testing.T) {
	one := []recorder.StoredEvent{{OriginatorID: "a", OriginatorVersion: 2}, {OriginatorID: "a", OriginatorVersion: 3}}
	err := Conflict(&recorder.Error{Kind: recorder.ErrIntegrity, Op: "insert events"}, one)
	var re *recorder.Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "a", re.OriginatorID)
	assert.Equal(t, int64(2), re.Version)

	two := []recorder.StoredEvent{{OriginatorID: "a", OriginatorVersion: 2}, {OriginatorID: "b", OriginatorVersion: 1}}
	err = Conflict(&recorder.Error{Kind: recorder.ErrIntegrity, Op: "insert events"}, two)
	require.ErrorAs(t, err, &re)
	assert.Empty(t, re.OriginatorID, "a batch of two originators names neither")

	err = Conflict(&recorder.Error{Kind: recorder.ErrOperational, Op: "insert events"}, one)
	require.ErrorAs(t, err, &re)
	assert.Empty(t, re.OriginatorID, "only integrity errors are conflicts")

	boom := errors.New("boom")
	assert.Same(t, boom, Conflict(boom, one))
}

func TestHoldInsertEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var committed bool
	hold := func(ctx context.Context, events []recorder.StoredEvent) ([]int64, func(context.Context, bool) error, error) {
		return []int64{7}, func(ctx context.Context, commit bool) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			committed = commit
			return nil
		}, nil
	}
	commit, err := HoldInsertEvents(ctx, nil, hold)
	require.NoError(t, err)
	cancel()
	ids, err := commit()
	require.NoError(t, err)
	assert.Equal(t, []int64{7}, ids)
	assert.True(t, committed, "commits even though the context that held the insert is cancelled")

	boom := errors.New("boom")
	_, err = HoldInsertEvents(context.Background(), nil, func(context.Context, []recorder.StoredEvent) ([]int64, func(context.Context, bool) error, error) {
		return nil, nil, boom
	})
	assert.ErrorIs(t, err, boom)
}
