package dogschool_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/example/dogschool"
	"github.com/eventsourcing-go/eventsourcing/system"
)

var errBadTrick = errors.New("bad trick")

// BrokenCounters refuses to count "bite".
type BrokenCounters struct{ *dogschool.Counters }

func (c *BrokenCounters) Policy(ctx context.Context, e eventsourcing.Event, p *system.ProcessingEvent) error {
	if d, ok := e.Data.(dogschool.TrickAdded); ok && d.Trick == "bite" {
		return errBadTrick
	}
	return c.Counters.Policy(ctx, e, p)
}

func brokenSystem(t *testing.T) *system.System {
	broken := system.NewApp("Counters", func(ctx context.Context, env map[string]string) (*BrokenCounters, error) {
		c, err := dogschool.NewCounters(ctx, env)
		return &BrokenCounters{c}, err
	})
	sys, err := system.New(system.Pipe(dogschool.SchoolApp(), broken))
	require.NoError(t, err)
	return sys
}

func tracked(t *testing.T, r system.Runner) int64 {
	t.Helper()
	c := system.MustGet[*BrokenCounters](r)
	pr, _ := c.ProcessRecorder()
	id, _, err := pr.MaxTrackingID(t.Context(), "DogSchool")
	require.NoError(t, err)
	return id
}

// With the single-threaded runner, the policy's error is returned by the
// leader's Save, after the leader's event was recorded; the follower's
// tracking stays before the failed event.
func TestPolicyErrorSingleThreaded(t *testing.T) {
	ctx := t.Context()
	r := system.NewSingleThreadedRunner(brokenSystem(t), nil)
	require.NoError(t, r.Start(ctx))
	school := system.MustGet[*dogschool.DogSchool](r)
	dog, err := school.RegisterDog(ctx, "Rex")
	require.NoError(t, err)
	require.NoError(t, school.AddTrick(ctx, dog, "sit"))
	require.EqualValues(t, 2, tracked(t, r))

	err = school.AddTrick(ctx, dog, "bite")
	require.ErrorIs(t, err, errBadTrick)
	var pe *system.ProcessingError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "Counters", pe.Follower)
	assert.Equal(t, "DogSchool", pe.Upstream)
	assert.EqualValues(t, 3, pe.NotificationID)

	details, err := school.GetDog(ctx, dog)
	require.NoError(t, err)
	assert.Equal(t, []string{"sit", "bite"}, details.Tricks, "the leader's event is recorded")
	assert.EqualValues(t, 2, tracked(t, r), "the failed event is not tracked")
	assert.ErrorIs(t, r.Err(), errBadTrick)
	assert.ErrorIs(t, r.Stop(), errBadTrick, "Stop reports the first error")
}

// With the multi-threaded runner, the error stops the follower, is reported
// by Err, Wait and Stop, and nothing after it is processed.
func TestPolicyErrorMultiThreaded(t *testing.T) {
	ctx := t.Context()
	r := system.NewMultiThreadedRunner(brokenSystem(t), nil)
	require.NoError(t, r.Start(ctx))
	school := system.MustGet[*dogschool.DogSchool](r)
	dog, err := school.RegisterDog(ctx, "Rex")
	require.NoError(t, err)
	require.NoError(t, school.AddTrick(ctx, dog, "sit"))
	require.NoError(t, system.Wait(ctx, r, "Counters", "DogSchool", 2, 10*time.Second))

	require.NoError(t, school.AddTrick(ctx, dog, "bite"), "the leader's save does not wait for followers")
	require.NoError(t, school.AddTrick(ctx, dog, "sit"))
	err = system.Wait(ctx, r, "Counters", "DogSchool", 4, 10*time.Second)
	require.ErrorIs(t, err, errBadTrick, "Wait returns the processing error instead of timing out")
	select {
	case <-r.Errored():
	case <-time.After(10 * time.Second):
		t.Fatal("the runner did not report the policy's error within 10s")
	}
	assert.ErrorIs(t, r.Err(), errBadTrick)
	assert.EqualValues(t, 2, tracked(t, r), "neither the failed event nor later ones are tracked")
	n, err := system.MustGet[*BrokenCounters](r).GetCount(ctx, "sit")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	err = r.Stop()
	var pe *system.ProcessingError
	require.ErrorAs(t, err, &pe)
	assert.EqualValues(t, 3, pe.NotificationID)
}

// Processing a position again fails with an integrity error and records
// nothing: exactly once.
func TestReprocessingIsRefused(t *testing.T) {
	ctx := t.Context()
	r := system.NewSingleThreadedRunner(dogschool.System(), nil)
	require.NoError(t, r.Start(ctx))
	defer func() { require.NoError(t, r.Stop()) }()
	school := system.MustGet[*dogschool.DogSchool](r)
	counters := system.MustGet[*dogschool.Counters](r)
	dog, err := school.RegisterDog(ctx, "Rex")
	require.NoError(t, err)
	require.NoError(t, school.AddTrick(ctx, dog, "sit"))

	f, err := system.NewFollower(counters)
	require.NoError(t, err)
	ns, err := school.Recorder().SelectNotifications(ctx, recorderQuery(2))
	require.NoError(t, err)
	e, err := school.Mapper().ToEvent(ns[0].StoredEvent)
	require.NoError(t, err)
	err = f.ProcessEvent(ctx, e, trackingOf(2))
	require.ErrorIs(t, err, eventsourcing.ErrIntegrity)
	n, err := counters.GetCount(ctx, "sit")
	require.NoError(t, err)
	assert.Equal(t, 1, n, "nothing of the refused processing is recorded")
}
