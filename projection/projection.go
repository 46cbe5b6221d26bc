// Package projection projects the events of an application into views
// ("read models"), each event exactly once: a projection updates its view and
// records the upstream position (a tracking record) in one atomic write, and
// a restarted Runner resumes after the view's last tracked position.
//
// A view is a recorder.TrackingRecorder with the user's own state beside it.
// MemoryView is the base of in-memory views; the subpackages sqlview and
// pgview are the bases of SQLite and PostgreSQL views, where users add their
// own tables and update them in the same transaction as the tracking record.
package projection

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// View is where a projection keeps its results and how far it has got.
type View interface {
	recorder.TrackingRecorder
}

// Batcher is implemented by views that can process several events in one
// transaction (the SQL bases). Batch runs fn, whose updates made with ctx are
// committed together with the last tracking record, or not at all. The runner
// batches only when it is behind; a failed batch is retried event by event, so
// that the events before a failing one are still recorded.
type Batcher interface {
	Batch(ctx context.Context, fn func(ctx context.Context) error) error
}

// Projection turns an application's events into a view.
type Projection interface {
	// Name names the projection; its settings are read under it
	// (COUNTPROJECTION_SQLITE_DBNAME).
	Name() string
	// Topics restricts the events the runner reads; nil means all.
	Topics() []string
	// Process updates the view for one event and records t in the same
	// atomic write. For an event it does not care about, it records t alone
	// (View.InsertTracking), so that the position still moves on.
	Process(ctx context.Context, event eventsourcing.Event, t recorder.Tracking) error
}

// Upstream is the application a projection reads. *eventsourcing.Application
// and every application type embedding it satisfy it.
type Upstream interface {
	Name() string
	Recorder() recorder.ApplicationRecorder
	Mapper() *eventsourcing.Mapper
	Close() error
}

// Errors of the projection runner.
var (
	// ErrAlreadyStarted is returned by a second Start.
	ErrAlreadyStarted = errors.New("projection runner already started")
	// ErrNotStarted is returned when the runner is used before Start.
	ErrNotStarted = errors.New("projection runner not started")
	// ErrStopped is returned by Wait when the runner was stopped before the
	// position was reached, and by Start after Stop.
	ErrStopped = errors.New("projection runner stopped")
)

// ProcessingError reports that a projection failed to process an event; the
// event's tracking record was not written.
type ProcessingError struct {
	Projection     string
	Application    string
	NotificationID int64
	Err            error
}

func (e *ProcessingError) Error() string {
	return fmt.Sprintf("projection %s processing notification %d of %s: %v", e.Projection, e.NotificationID, e.Application, e.Err)
}

func (e *ProcessingError) Unwrap() error { return e.Err }
