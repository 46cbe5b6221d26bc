package recorder

import (
	"context"
	"time"
)

// AggregateRecorder stores the events of aggregates (or their snapshots).
//
// InsertEvents is atomic: a duplicate (originator id, version), against the store or
// within the batch, fails the whole batch with ErrIntegrity and writes nothing. There
// is no expected-version argument: the unique key is the optimistic concurrency check.
type AggregateRecorder interface {
	// InsertEvents records a batch atomically. Application recorders return the
	// batch's notification ids in order; aggregate recorders return nil.
	InsertEvents(ctx context.Context, events []StoredEvent, opts ...InsertOption) ([]int64, error)
	// SelectEvents returns one originator's events by version; an unknown
	// originator gives an empty result, not an error.
	SelectEvents(ctx context.Context, originatorID string, q EventQuery) ([]StoredEvent, error)
}

// ApplicationRecorder is an aggregate recorder that also orders every event of the
// application in a notification log.
//
// Notification ids of one batch are contiguous (on backends with contiguous ids)
// and never interleaved with a concurrent batch, and readers see them in commit
// order: no reader ever sees id n+1 while id n is still uncommitted.
type ApplicationRecorder interface {
	AggregateRecorder
	// SelectNotifications returns notifications in ascending id order.
	SelectNotifications(ctx context.Context, q NotificationQuery) ([]Notification, error)
	// MaxNotificationID returns the last notification id, and false when there is none.
	MaxNotificationID(ctx context.Context) (int64, bool, error)
	// Subscribe yields the notifications after the position (all of them from
	// Start()) that pass the topic filter, in id order, blocking when caught up.
	Subscribe(ctx context.Context, after Position, topics []string) (Subscription, error)
}

// TrackingRecorder records how far a downstream has processed each upstream
// application's notification log.
type TrackingRecorder interface {
	// InsertTracking succeeds when no position is recorded for the application or
	// t.NotificationID is greater than it; otherwise it fails with ErrIntegrity.
	InsertTracking(ctx context.Context, t Tracking) error
	// MaxTrackingID returns the last recorded position, and false when there is none.
	MaxTrackingID(ctx context.Context, applicationName string) (int64, bool, error)
	// HasTrackingID reports whether the position has reached notificationID.
	HasTrackingID(ctx context.Context, applicationName string, notificationID int64) (bool, error)
	// Wait returns when the position has reached notificationID, with ErrTimeout
	// after timeout, or ErrWaitInterrupted when ctx ends first.
	Wait(ctx context.Context, applicationName string, notificationID int64, timeout time.Duration) error
}

// ProcessRecorder records a process application's new events and the tracking
// position of the upstream event that caused them in one atomic write
// (InsertEvents with WithTracking).
type ProcessRecorder interface {
	ApplicationRecorder
	TrackingRecorder
}

// Subscription is a pull-based, stoppable stream of notifications.
type Subscription interface {
	// Next blocks until the next notification, the end of ctx, or Close.
	// After Close it returns ErrSubscriptionClosed; a failure of the underlying
	// store is returned as an error, never as a silent end.
	Next(ctx context.Context) (Notification, error)
	// Close stops the subscription; it is idempotent and safe to call from any
	// goroutine, also while Next blocks.
	Close() error
}

// InsertOptions are the options of one InsertEvents call.
type InsertOptions struct {
	// Tracking, when set, is recorded in the same transaction as the events
	// (process recorders only).
	Tracking *Tracking
}

// InsertOption sets an option of InsertEvents.
type InsertOption func(*InsertOptions)

// WithTracking records t atomically with the events.
func WithTracking(t Tracking) InsertOption {
	return func(o *InsertOptions) { o.Tracking = &t }
}

// ApplyInsertOptions folds options into a value, for backends.
func ApplyInsertOptions(opts []InsertOption) InsertOptions {
	var o InsertOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Purpose says what an aggregate recorder stores. A Factory builds one
// aggregate recorder per purpose, each over its own store (table, streams).
type Purpose string

const (
	// PurposeEvents is the recorder of the aggregates' stored events.
	PurposeEvents Purpose = "events"
	// PurposeSnapshots is the recorder of snapshots of aggregates' states.
	PurposeSnapshots Purpose = "snapshots"
)

// Check returns nil for PurposeEvents and PurposeSnapshots, and for any
// other purpose an error matching ErrProgramming that names it: a Factory
// refuses to build an aggregate recorder for it.
func (p Purpose) Check() error {
	switch p {
	case PurposeEvents, PurposeSnapshots:
		return nil
	}
	return Errorf(ErrProgramming, "aggregate recorder", "unknown purpose %q (want %q or %q)", string(p), PurposeEvents, PurposeSnapshots)
}

// Factory builds the recorders of one application (or projection) on one
// persistence module. Every recorder it builds on the memory module is a new,
// empty store.
type Factory interface {
	// AggregateRecorder builds a recorder for a purpose, PurposeEvents or
	// PurposeSnapshots; any other purpose fails with the error of
	// Purpose.Check.
	AggregateRecorder(ctx context.Context, purpose Purpose) (AggregateRecorder, error)
	ApplicationRecorder(ctx context.Context) (ApplicationRecorder, error)
	TrackingRecorder(ctx context.Context) (TrackingRecorder, error)
	ProcessRecorder(ctx context.Context) (ProcessRecorder, error)
	// Close releases what the factory holds (connection pools, files).
	Close() error
}
