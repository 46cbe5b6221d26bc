package recorder_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func TestMatchTopic(t *testing.T) {
	assert.True(t, recorder.MatchTopic(nil, "a"), "an empty filter passes everything")
	assert.True(t, recorder.MatchTopic([]string{}, "a"))
	assert.True(t, recorder.MatchTopic([]string{"b", "a"}, "a"))
	assert.False(t, recorder.MatchTopic([]string{"b"}, "a"))
	assert.False(t, recorder.MatchTopic([]string{"example:A"}, "example:AB"), "topics match exactly, not by prefix")
}

func TestPosition(t *testing.T) {
	assert.Equal(t, recorder.Position{}, recorder.Start(), "the zero Position is the start")
	id, ok := recorder.Start().ID()
	assert.False(t, ok)
	assert.Zero(t, id)
	assert.Equal(t, "start", recorder.Start().String())
	id, ok = recorder.After(0).ID()
	assert.True(t, ok, "after id 0 is not the start")
	assert.Zero(t, id)
	assert.NotEqual(t, recorder.Start(), recorder.After(0))
	id, ok = recorder.After(42).ID()
	assert.True(t, ok)
	assert.Equal(t, int64(42), id)
	assert.Equal(t, "after 42", recorder.After(42).String())
}

func TestBound(t *testing.T) {
	v, ok := recorder.Bound{}.Value()
	assert.False(t, ok, "the zero Bound is no bound")
	assert.Zero(t, v)
	assert.Equal(t, "none", recorder.Bound{}.String())
	v, ok = recorder.Bounded(0).Value()
	assert.True(t, ok, "a bound at 0 is a bound: EventStoreDB versions start at 0")
	assert.Zero(t, v)
	assert.NotEqual(t, recorder.Bound{}, recorder.Bounded(0))
	v, ok = recorder.Bounded(-1).Value()
	assert.True(t, ok)
	assert.Equal(t, int64(-1), v)
	assert.Equal(t, "7", recorder.Bounded(7).String())
}

func TestInsertOptions(t *testing.T) {
	assert.Nil(t, recorder.ApplyInsertOptions(nil).Tracking)
	tr := recorder.Tracking{ApplicationName: "up", NotificationID: 7}
	opt := recorder.WithTracking(tr)
	tr.NotificationID = 8
	o := recorder.ApplyInsertOptions([]recorder.InsertOption{opt})
	require.NotNil(t, o.Tracking)
	assert.Equal(t, recorder.Tracking{ApplicationName: "up", NotificationID: 7}, *o.Tracking, "WithTracking keeps a copy")
}
