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

func TestPtr(t *testing.T) {
	v := []int64{3}
	p := recorder.Ptr(v[0])
	v[0] = 4
	assert.Equal(t, int64(3), *p, "Ptr points at a copy")
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
