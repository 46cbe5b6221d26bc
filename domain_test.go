package eventsourcing_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	es "github.com/eventsourcing-go/eventsourcing"
)

func TestNameID(t *testing.T) {
	assert.Equal(t, "3b1d60bd-e742-5dc1-a743-a05f3d78043b", es.NameID("/counters/x").String())
	assert.Equal(t, es.NameID("/counters/x"), es.NameID("/counters/x"))
	assert.NotEqual(t, es.NewID(), es.NewID())
	assert.Equal(t, uuid.Version(4), es.NewID().Version())
}

func TestCreateAndTrigger(t *testing.T) {
	before := time.Now().UTC().Add(-time.Second)
	dog := NewDog("Fido")
	assert.NotEqual(t, uuid.Nil, dog.ID())
	assert.Equal(t, int64(1), dog.Version())
	assert.Equal(t, "Fido", dog.Name)
	assert.Equal(t, dog.CreatedOn(), dog.ModifiedOn())
	assert.True(t, dog.CreatedOn().After(before))
	assert.Equal(t, time.UTC, dog.CreatedOn().Location())
	assert.Zero(t, dog.CreatedOn().Nanosecond()%1000, "timestamps are truncated to microseconds")

	dog.AddTrick("roll over")
	assert.Equal(t, int64(2), dog.Version())
	assert.Equal(t, []string{"roll over"}, dog.Tricks, "trigger applies at once")
	assert.False(t, dog.ModifiedOn().Before(dog.CreatedOn()))

	pending := dog.PendingEvents()
	require.Len(t, pending, 2)
	assert.True(t, pending[0].IsCreation())
	assert.False(t, pending[1].IsCreation())
	assert.Equal(t, Registered{Name: "Fido"}, pending[0].Data)
	assert.Equal(t, int64(1), pending[0].OriginatorVersion)
	assert.Equal(t, int64(2), pending[1].OriginatorVersion)
	assert.Equal(t, dog.ID(), pending[1].OriginatorID)

	collected := dog.CollectEvents()
	assert.Len(t, collected, 2)
	assert.Empty(t, dog.PendingEvents())
}

func TestReplay(t *testing.T) {
	dog := NewDog("Fido")
	dog.AddTrick("sit")
	events := dog.CollectEvents()

	var copy Dog
	require.NoError(t, es.Replay(&copy, events...))
	assert.Equal(t, dog.ID(), copy.ID())
	assert.Equal(t, dog.Version(), copy.Version())
	assert.Equal(t, dog.CreatedOn(), copy.CreatedOn())
	assert.Equal(t, dog.ModifiedOn(), copy.ModifiedOn())
	assert.Equal(t, dog.Tricks, copy.Tricks)
	assert.Empty(t, copy.PendingEvents(), "replayed events are not pending")

	tests := []struct {
		name  string
		event es.Event
		want  error
	}{
		{"other originator", es.Event{OriginatorID: es.NewID(), OriginatorVersion: 3, Data: TrickAdded{"x"}}, es.ErrOriginatorID},
		{"same version again", es.Event{OriginatorID: dog.ID(), OriginatorVersion: 2, Data: TrickAdded{"x"}}, es.ErrOriginatorVersion},
		{"version gap", es.Event{OriginatorID: dog.ID(), OriginatorVersion: 4, Data: TrickAdded{"x"}}, es.ErrOriginatorVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Dog
			require.NoError(t, es.Replay(&d, events...))
			err := es.Replay(&d, tt.event)
			assert.True(t, errors.Is(err, tt.want), "got %v", err)
			assert.Equal(t, []string{"sit"}, d.Tricks, "a rejected event is not applied")
		})
	}
}

// Counter starts at version 0, as aggregates stored in EventStoreDB do.
type Counter struct {
	es.Aggregate
	Name  string
	Count int
}

type (
	CounterStarted     struct{ Name string }
	CounterIncremented struct{}
)

func (*Counter) InitialVersion() int64 { return 0 }

func (c *Counter) Apply(data any) {
	switch e := data.(type) {
	case CounterStarted:
		c.Name = e.Name
	case CounterIncremented:
		c.Count++
	}
}

func NewCounter(name string) *Counter {
	c := new(Counter)
	es.Create(c, es.NameID("/counters/"+name), CounterStarted{Name: name})
	return c
}

func TestInitialVersionZero(t *testing.T) {
	c := NewCounter("fetch")
	assert.Equal(t, int64(0), c.Version())
	es.Trigger(c, CounterIncremented{})
	assert.Equal(t, int64(1), c.Version())
	assert.Equal(t, 1, c.Count)
	assert.Equal(t, es.NameID("/counters/fetch"), c.ID())

	var copy Counter
	require.NoError(t, es.Replay(&copy, c.CollectEvents()...))
	assert.Equal(t, int64(1), copy.Version())
	assert.Equal(t, 1, copy.Count)
}

func TestRegisterTopics(t *testing.T) {
	types := es.NewTypes()
	require.NoError(t, es.Register[Registered](types, "dogschool:Dog.Registered"))
	require.NoError(t, es.Register[Registered](types, "dogschool:Dog.Registered"), "same type, same topic again is harmless")
	assert.ErrorIs(t, es.Register[TrickAdded](types, "dogschool:Dog.Registered"), es.ErrTopicTaken)
	assert.ErrorIs(t, es.Register[Registered](types, "other"), es.ErrTopicTaken)
	assert.ErrorIs(t, es.Register[int](types, "int"), es.ErrArgument)

	type Bad struct{ Timestamp time.Time }
	assert.ErrorIs(t, es.Register[Bad](types, "bad"), es.ErrArgument, "payload fields may not shadow the envelope")

	topic, err := types.Topic(Registered{})
	require.NoError(t, err)
	assert.Equal(t, "dogschool:Dog.Registered", topic)
	_, err = types.Topic(TrickAdded{})
	assert.ErrorIs(t, err, es.ErrTopicNotRegistered)
}
