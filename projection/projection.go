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
	"github.com/eventsourcing-go/eventsourcing/follow"
	"github.com/eventsourcing-go/eventsourcing/internal/lifecycle"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// View is where a projection keeps its results and how far it has got.
type View interface {
	recorder.TrackingRecorder
}

// Batcher is implemented by views that can process several events in one
// transaction (the SQL bases). Batch runs fn, whose updates made with ctx are
// committed together with the last tracking record, or not at all. The
// runtime batches only what it has read at once (a page while behind, a
// burst while live); a failed batch is retried event by event, so that the
// events before a failing one are still recorded.
type Batcher = follow.Batcher

// Rebuilder is implemented by views that can be rebuilt: Reset empties the
// view's own tables and its tracking records, in one transaction where it
// can, so that the projection reads its upstream from the start again.
// The bases help: sqlview.View.ResetTracking, pgview.View.ResetTracking and
// MemoryView.ResetTracking.
type Rebuilder interface {
	Reset(ctx context.Context) error
}

// Projection turns an application's events into a view.
type Projection interface {
	// Name names the projection; its settings are read under it
	// (COUNTPROJECTION_SQLITE_DBNAME).
	Name() string
	// Topics restricts the events the runtime reads; nil means all. The
	// positions of the events left out are tracked by the runtime.
	Topics() []string
	// Process updates the view for one event, recording t in the same
	// atomic write, and reports true; or, for an event it does not care
	// about, records nothing and reports false. The runtime then records
	// the position itself, coalesced with other ignored positions.
	Process(ctx context.Context, event eventsourcing.Event, t recorder.Tracking) (recorded bool, err error)
}

// Upstream is an application as the runtime downstream of it sees it: a
// projection's runner here, and a system's followers and projections
// (system.Application embeds it). *eventsourcing.Application and every
// application type embedding it satisfy it.
type Upstream interface {
	// Name is the application's name; tracking records carry it.
	Name() string
	// Recorder is its notification log, which the runtime reads and
	// subscribes to (as a follow.Source).
	Recorder() recorder.ApplicationRecorder
	// Mapper decodes its stored events.
	Mapper() *eventsourcing.Mapper
	// Close releases it, when the runner built it.
	Close() error
}

// Errors of the projection runner.
var (
	// ErrAlreadyStarted is returned by a second Start.
	ErrAlreadyStarted = fmt.Errorf("projection runner %w", lifecycle.ErrAlreadyStarted)
	// ErrNotStarted is returned when the runner is used before Start.
	ErrNotStarted = errors.New("projection runner not started")
	// ErrStopped is returned by Wait when the runner was stopped before the
	// position was reached, and by Start after Stop.
	ErrStopped = fmt.Errorf("projection runner %w", lifecycle.ErrStopped)
	// ErrStopInHandler is returned by Stop called from inside a
	// projection's Process: the runner stops once Process returns.
	ErrStopInHandler = lifecycle.ErrStopInWorker
	// ErrNotRebuildable is returned by Rebuild when the view has no Reset.
	ErrNotRebuildable = errors.New("the view cannot be rebuilt: it does not implement projection.Rebuilder (Reset)")
)

// ProcessingError reports that a projection failed to process an event; the
// event's tracking record was not written.
type ProcessingError = follow.ProcessingError
