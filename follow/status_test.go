package follow_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/memory"
)

// unreachable is a source whose head cannot be read while down: the read
// waits until its context ends, as a remote source's retries do while the
// upstream is partitioned away.
type unreachable struct {
	follow.Source
	down atomic.Bool
}

func (u *unreachable) MaxNotificationID(ctx context.Context) (int64, bool, error) {
	if u.down.Load() {
		<-ctx.Done()
		return 0, false, ctx.Err()
	}
	return u.Source.MaxNotificationID(ctx)
}

// Status answers while the upstream's head cannot be read, with the last
// head it read.
func TestStatusWhileUpstreamUnreachable(t *testing.T) {
	ctx := t.Context()
	types := eventsourcing.NewTypes()
	eventsourcing.MustRegister[handledEvent](types, "test:Handled")
	mapper := eventsourcing.NewMapper(types)
	up := memory.NewApplicationRecorder()
	s, err := mapper.FromEvent(eventsourcing.Event{OriginatorID: uuid.New(), OriginatorVersion: 1, Timestamp: eventsourcing.Now(), Data: handledEvent{N: 1}})
	require.NoError(t, err)
	_, err = up.InsertEvents(ctx, []recorder.StoredEvent{s})
	require.NoError(t, err)
	src := &unreachable{Source: up}
	view := projection.NewMemoryView()
	f, err := follow.New(follow.Config{
		Name: "StatusTest", Upstream: "Up", Source: src, Mapper: mapper, Tracker: view,
		Handler: follow.HandlerFunc(func(context.Context, eventsourcing.Event, recorder.Tracking) (bool, error) { return false, nil }),
	})
	require.NoError(t, err)
	before := f.Status(ctx)
	require.True(t, before.HasHead)

	src.down.Store(true)
	done := make(chan follow.Status, 1)
	go func() { done <- f.Status(ctx) }()
	select {
	case st := <-done:
		assert.Equal(t, before.Head, st.Head, "the last head read")
		assert.True(t, st.HasHead)
	case <-time.After(30 * time.Second):
		t.Fatal("Status did not answer in 30 s while the upstream's head could not be read")
	}
}
