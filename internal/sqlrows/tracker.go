package sqlrows

import (
	"context"
	"time"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Tracker is the tracking recorder of a SQL view base (projection/sqlview,
// projection/pgview) over transactions of type Tx: it runs each update of a
// view in one transaction with its tracking record, alone or joined to the
// batch its context carries, and reads positions inside a batch from the
// batch's transaction. The view bases' exported methods call it, so that a
// view on either database keeps the same exactly-once rules.
type Tracker[Tx any] struct {
	inTx   func(ctx context.Context, op string, fn func(tx Tx) error) error
	load   func(ctx context.Context, tx Tx, applicationName string) (int64, bool, error)
	max    func(ctx context.Context, applicationName string) (int64, bool, error)
	insert func(ctx context.Context, tx Tx, t recorder.Tracking) error
	signal recorder.Signal
}

// trackerKey is the context key of a tracker's open batch.
type trackerKey[Tx any] struct{ t *Tracker[Tx] }

// NewTracker returns the tracker of a view whose database runs fn in one
// transaction with inTx (committing when fn returns nil; op names the
// operation in errors), reads an application's position in a transaction
// with load and outside one with max, and upserts a position with insert,
// which fails with TrackingNotAdvanced when it does not advance.
func NewTracker[Tx any](
	inTx func(ctx context.Context, op string, fn func(tx Tx) error) error,
	load func(ctx context.Context, tx Tx, applicationName string) (int64, bool, error),
	max func(ctx context.Context, applicationName string) (int64, bool, error),
	insert func(ctx context.Context, tx Tx, t recorder.Tracking) error) *Tracker[Tx] {
	return &Tracker[Tx]{inTx: inTx, load: load, max: max, insert: insert}
}

func (k *Tracker[Tx]) batch(ctx context.Context) *Batch[Tx] {
	b, _ := ctx.Value(trackerKey[Tx]{k}).(*Batch[Tx])
	return b
}

// Update runs fn in a transaction together with the tracking record t: both
// are committed, or neither. When t does not advance the position it fails
// with recorder.ErrIntegrity and fn does not run. Inside Batch, the batch's
// transaction is used and the position is written when the batch commits.
func (k *Tracker[Tx]) Update(ctx context.Context, t recorder.Tracking, fn func(ctx context.Context, tx Tx) error) error {
	if b := k.batch(ctx); b != nil {
		return b.Update(ctx, t, fn)
	}
	err := k.inTx(ctx, "update", func(tx Tx) error {
		if err := k.insert(ctx, tx, t); err != nil {
			return err
		}
		if fn != nil {
			return fn(ctx, tx)
		}
		return nil
	})
	if err == nil {
		k.signal.Notify()
	}
	return err
}

// Batch runs fn in one transaction: every Update made with the context fn
// receives joins it, and the last position of each application is written at
// commit. If fn fails, nothing of it is recorded. Inside a batch of the same
// tracker, fn joins that batch.
func (k *Tracker[Tx]) Batch(ctx context.Context, fn func(ctx context.Context) error) error {
	if k.batch(ctx) != nil {
		return fn(ctx)
	}
	err := k.inTx(ctx, "batch", func(tx Tx) error {
		b := NewBatch(tx, k.load, k.insert)
		if err := fn(context.WithValue(ctx, trackerKey[Tx]{k}, b)); err != nil {
			return err
		}
		return b.WriteTracking(ctx)
	})
	if err == nil {
		k.signal.Notify()
	}
	return err
}

// MaxTrackingID returns the application's recorded position; inside Batch,
// as the batch's transaction sees it (before the batch writes its own).
func (k *Tracker[Tx]) MaxTrackingID(ctx context.Context, applicationName string) (int64, bool, error) {
	if b := k.batch(ctx); b != nil {
		return k.load(ctx, b.Tx, applicationName)
	}
	return k.max(ctx, applicationName)
}

// HasTrackingID reports whether the position has reached notificationID.
func (k *Tracker[Tx]) HasTrackingID(ctx context.Context, applicationName string, notificationID int64) (bool, error) {
	return recorder.HasTrackingID(ctx, k.MaxTrackingID, applicationName, notificationID)
}

// Wait returns when the position has reached notificationID; see
// recorder.WaitFor. Commits through this tracker wake it at once; other
// processes' are seen by polling.
func (k *Tracker[Tx]) Wait(ctx context.Context, applicationName string, notificationID int64, timeout time.Duration) error {
	return recorder.WaitTracking(ctx, k.HasTrackingID, &k.signal, applicationName, notificationID, timeout)
}
