package sqlrows

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func TestBatch(t *testing.T) {
	ctx := context.Background()
	recorded := map[string]int64{"up": 5}
	loads := 0
	load := func(_ context.Context, tx string, name string) (int64, bool, error) {
		assert.Equal(t, "tx", tx)
		loads++
		id, ok := recorded[name]
		return id, ok, nil
	}
	var written []recorder.Tracking
	insert := func(_ context.Context, tx string, tr recorder.Tracking) error {
		written = append(written, tr)
		return nil
	}
	b := NewBatch("tx", load, insert)

	ran := 0
	fn := func(_ context.Context, tx string) error { ran++; return nil }
	err := b.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: 5}, fn)
	assert.ErrorIs(t, err, recorder.ErrIntegrity, "does not advance the recorded position")
	require.NoError(t, b.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: 6}, fn))
	assert.ErrorIs(t, b.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: 6}, fn), recorder.ErrIntegrity,
		"does not advance the batch's position")
	require.NoError(t, b.Update(ctx, recorder.Tracking{ApplicationName: "new", NotificationID: 1}, nil))
	assert.Equal(t, 1, ran, "fn runs only for an advancing record")
	assert.Equal(t, 2, loads, "each application is read once")

	boom := errors.New("boom")
	assert.ErrorIs(t, b.Update(ctx, recorder.Tracking{ApplicationName: "up", NotificationID: 7},
		func(context.Context, string) error { return boom }), boom)

	require.NoError(t, b.WriteTracking(ctx))
	assert.ElementsMatch(t, []recorder.Tracking{{ApplicationName: "up", NotificationID: 6}, {ApplicationName: "new", NotificationID: 1}}, written)
}
