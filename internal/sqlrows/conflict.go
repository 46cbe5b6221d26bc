package sqlrows

import (
	"context"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Conflict adds the originator of a batch of one originator's events to an
// integrity error that names none, so that the message says whose version
// conflicted. Other errors, and batches of several originators, are returned
// as they are.
func Conflict(err error, events []recorder.StoredEvent) error {
	re, ok := err.(*recorder.Error)
	if !ok || re.Kind != recorder.ErrIntegrity || len(events) == 0 || re.OriginatorID != "" {
		return err
	}
	for _, e := range events[1:] {
		if e.OriginatorID != events[0].OriginatorID {
			return err
		}
	}
	re.OriginatorID, re.Version = events[0].OriginatorID, events[0].OriginatorVersion
	return re
}

// HoldInsertEvents is the recordertest.Holder hook over a backend's
// HoldInsert (which returns the ids and a function that commits or rolls
// back): the returned function commits, even once ctx is cancelled, and
// returns the batch's ids.
func HoldInsertEvents(ctx context.Context, events []recorder.StoredEvent,
	hold func(context.Context, []recorder.StoredEvent) ([]int64, func(context.Context, bool) error, error)) (func() ([]int64, error), error) {
	ids, finish, err := hold(ctx, events)
	if err != nil {
		return nil, err
	}
	return func() ([]int64, error) {
		if err := finish(context.WithoutCancel(ctx), true); err != nil {
			return nil, err
		}
		return ids, nil
	}, nil
}
