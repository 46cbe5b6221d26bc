package memory

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func TestCanonicalUUID(t *testing.T) {
	for range 100 {
		u := uuid.New()
		k, ok := canonicalUUID(u.String())
		assert.True(t, ok, u.String())
		assert.Equal(t, [16]byte(u), k, u.String())
	}
	for _, s := range []string{
		"",
		"not a uuid",
		strings.ToUpper(uuid.NewString()), // a different text id from its lower-case form
		"{" + uuid.NewString() + "}",
		"urn:uuid:" + uuid.NewString(),
		strings.ReplaceAll(uuid.NewString(), "-", ""),
		"6f1c4b1e-64f5-4c4b-9a2e-0a3f5f6d2b1g",
		"6f1c4b1e-64f5-4c4b-9a2e_0a3f5f6d2b11",
		"6f1c4b1e-64f54-c4b-9a2e-0a3f5f6d2b11",
	} {
		_, ok := canonicalUUID(s)
		assert.False(t, ok, s)
	}
}

func TestTextAndUUIDIdsAreDistinct(t *testing.T) {
	r := NewAggregateRecorder()
	ctx := t.Context()
	lower := uuid.NewString()
	upper := strings.ToUpper(lower)
	for _, id := range []string{lower, upper, "product-" + lower} {
		_, err := r.InsertEvents(ctx, nil)
		assert.NoError(t, err)
		_, err = r.InsertEvents(ctx, []recorder.StoredEvent{{OriginatorID: id, Topic: "t", State: []byte(id)}})
		assert.NoError(t, err, "version 0 of %s is new", id)
	}
	for _, id := range []string{lower, upper, "product-" + lower} {
		got, err := r.SelectEvents(ctx, id, recorder.EventQuery{})
		assert.NoError(t, err)
		if assert.Len(t, got, 1, id) {
			assert.Equal(t, id, got[0].OriginatorID)
			assert.Equal(t, id, string(got[0].State))
		}
	}
}
