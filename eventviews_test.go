package eventsourcing_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/memory"
)

// copyingFactory hands out memory recorders behind the bare interface, so
// that the repository reads them with SelectEvents, as any other backend.
type copyingFactory struct{ *memory.Factory }

func (f copyingFactory) ApplicationRecorder(ctx context.Context) (recorder.ApplicationRecorder, error) {
	r, err := f.Factory.ApplicationRecorder(ctx)
	return struct{ recorder.ApplicationRecorder }{r}, err
}

// dogAt is a dog with n tricks, every event a second after the one before.
func dogAt(id uuid.UUID, n int) *Dog {
	at := time.Date(2026, 1, 2, 3, 4, 5, 678_000, time.UTC)
	d := new(Dog)
	es.CreateAt(d, id, Registered{Name: "Fido"}, at)
	for i := range n {
		es.TriggerAt(d, TrickAdded{Trick: fmt.Sprint("trick ", i)}, at.Add(time.Duration(i+1)*time.Second))
	}
	return d
}

// A get reads the memory recorder's states in place; what it rebuilds is
// what a get through SelectEvents rebuilds, at every version, timestamps
// included.
func TestGetFromViewsEqualsGetFromCopies(t *testing.T) {
	ctx := context.Background()
	views := newApp(t, es.Options{Name: "Views"})
	copies := newApp(t, es.Options{Name: "Copies", Factory: copyingFactory{memory.NewFactory()}})
	id := es.NewID()
	for _, app := range []*es.Application{views, copies} {
		_, err := app.Save(ctx, dogAt(id, 20))
		require.NoError(t, err)
	}
	for _, opts := range [][]es.GetOption{nil, {es.AtVersion(1)}, {es.AtVersion(2)}, {es.AtVersion(11)}, {es.AtVersion(21)}} {
		want, err := es.Get[Dog](ctx, copies, id, opts...)
		require.NoError(t, err)
		got, err := es.Get[Dog](ctx, views, id, opts...)
		require.NoError(t, err)
		assert.Equal(t, want, got)
		at := time.Date(2026, 1, 2, 3, 4, 5, 678_000, time.UTC)
		assert.Equal(t, at, got.CreatedOn())
		assert.Equal(t, at.Add(time.Duration(got.Version()-1)*time.Second), got.ModifiedOn())
	}
}

// Only the first and the last event's timestamps are kept by a replay, but
// every event's is checked: a malformed one between them still fails the get.
func TestGetChecksEveryTimestamp(t *testing.T) {
	ctx := context.Background()
	for _, corrupt := range []struct{ from, to string }{
		{"2026-01-02T03:04:07", "2026-13-02T03:04:07"}, // no 13th month
		{"2026-01-02T03:04:07", "2026-01-02T03:04:6x"},
		{`"}`, `"`},
	} {
		t.Run(corrupt.to, func(t *testing.T) {
			app := newApp(t, es.Options{Name: "Bench"})
			id := es.NewID()
			stored := make([]recorder.StoredEvent, 0, 5)
			for _, e := range dogAt(id, 4).PendingEvents() {
				if e.IsCreation() {
					e.OriginatorTopic = "dogschool:Dog"
				}
				s, err := app.Mapper().FromEvent(e)
				require.NoError(t, err)
				stored = append(stored, s)
			}
			// The third event (version 3) is two seconds after the first.
			state := stored[2].State
			require.Contains(t, string(state), corrupt.from)
			stored[2].State = bytes.Replace(state, []byte(corrupt.from), []byte(corrupt.to), 1)
			_, err := app.Recorder().InsertEvents(ctx, stored)
			require.NoError(t, err)
			_, err = es.Get[Dog](ctx, app, id)
			assert.ErrorIs(t, err, es.ErrDeserialisation)
		})
	}
}

// The strings a replay decodes share chunks; each is what was saved, short or
// long, escaped or not, and none changes when more are decoded.
func TestGetStrings(t *testing.T) {
	ctx := context.Background()
	app := newApp(t, es.Options{Name: "Strings"})
	tricks := []string{"", "sit", "roll \"over\"\n", "ünïcode ✓", string(bytes.Repeat([]byte("long "), 40))}
	for i := range 60 {
		tricks = append(tricks, fmt.Sprint("trick number ", i))
	}
	dog := NewDog("Fido")
	for _, trick := range tricks {
		dog.AddTrick(trick)
	}
	_, err := app.Save(ctx, dog)
	require.NoError(t, err)
	first, err := es.Get[Dog](ctx, app, dog.ID())
	require.NoError(t, err)
	second, err := es.Get[Dog](ctx, app, dog.ID())
	require.NoError(t, err)
	assert.Equal(t, "Fido", first.Name)
	assert.Equal(t, tricks, first.Tricks)
	assert.Equal(t, tricks, second.Tricks)
}
