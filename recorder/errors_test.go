package recorder_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func TestErrorKindHierarchy(t *testing.T) {
	db := []error{recorder.ErrDatabase, recorder.ErrPersistence}
	tests := []struct {
		kind    error
		is      []error
		isNot   []error
		message string
	}{
		{recorder.ErrIntegrity, db, []error{recorder.ErrOperational, recorder.ErrInterface}, "integrity error"},
		{recorder.ErrConflict, db, nil, "integrity error"},
		{recorder.ErrData, db, []error{recorder.ErrIntegrity}, "data error"},
		{recorder.ErrOperational, db, []error{recorder.ErrIntegrity}, "operational error"},
		{recorder.ErrInternal, db, nil, "internal error"},
		{recorder.ErrProgramming, db, nil, "programming error"},
		{recorder.ErrNotSupported, db, []error{recorder.ErrProgramming}, "not supported"},
		{recorder.ErrConnectionUnavailable, []error{recorder.ErrOperational, recorder.ErrDatabase, recorder.ErrPersistence}, nil, "connection unavailable"},
		{recorder.ErrInterface, []error{recorder.ErrPersistence}, []error{recorder.ErrDatabase}, "interface error"},
		{recorder.ErrTimeout, nil, []error{recorder.ErrPersistence, recorder.ErrWaitInterrupted}, "timed out"},
		{recorder.ErrWaitInterrupted, nil, []error{recorder.ErrPersistence, recorder.ErrTimeout}, "wait interrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.message, func(t *testing.T) {
			assert.Equal(t, tt.message, tt.kind.Error())
			for _, parent := range tt.is {
				assert.ErrorIs(t, tt.kind, parent)
			}
			for _, other := range tt.isNot {
				assert.NotErrorIs(t, tt.kind, other)
			}
		})
	}
	assert.Same(t, recorder.ErrIntegrity, recorder.ErrConflict)
}

func TestErrorMatchesKindAndCause(t *testing.T) {
	cause := errors.New("duplicate key value violates unique constraint")
	err := error(&recorder.Error{Kind: recorder.ErrIntegrity, Op: "insert events", OriginatorID: "abc", Version: 3, Err: cause})
	assert.Equal(t, "insert events: originator abc version 3: integrity error: duplicate key value violates unique constraint", err.Error())

	wrapped := fmt.Errorf("save: %w", fmt.Errorf("repository: %w", err))
	assert.ErrorIs(t, wrapped, recorder.ErrIntegrity, "the kind survives wrapping")
	assert.ErrorIs(t, wrapped, recorder.ErrDatabase)
	assert.ErrorIs(t, wrapped, cause, "the cause is reachable")
	assert.NotErrorIs(t, wrapped, recorder.ErrOperational)
	var e *recorder.Error
	require.ErrorAs(t, wrapped, &e)
	assert.Equal(t, "abc", e.OriginatorID)
	assert.Equal(t, int64(3), e.Version)
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err  *recorder.Error
		want string
	}{
		{&recorder.Error{Kind: recorder.ErrTimeout, Op: "wait"}, "wait: timed out"},
		{&recorder.Error{Op: "select events", Err: context.Canceled}, "select events: context canceled"},
		{&recorder.Error{Kind: recorder.ErrData}, "data error"},
		{&recorder.Error{}, ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.err.Error())
	}
	assert.ErrorIs(t, &recorder.Error{Op: "select events", Err: context.Canceled}, context.Canceled)
	assert.Empty(t, (&recorder.Error{}).Unwrap())
}

func TestErrorf(t *testing.T) {
	err := recorder.Errorf(recorder.ErrProgramming, "create table", "name %q is longer than %d characters", "x", 63)
	assert.ErrorIs(t, err, recorder.ErrProgramming)
	assert.Equal(t, `create table: programming error: name "x" is longer than 63 characters`, err.Error())
}
