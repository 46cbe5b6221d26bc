package sqlrows

import (
	"context"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Batch is an open batch of a view's updates (projection/sqlview,
// projection/pgview) in one transaction of type Tx: the tracking positions
// it has reached so far, which it writes when the batch commits.
type Batch[Tx any] struct {
	Tx        Tx
	load      func(ctx context.Context, tx Tx, applicationName string) (int64, bool, error)
	insert    func(ctx context.Context, tx Tx, t recorder.Tracking) error
	positions map[string]int64
	loaded    map[string]bool
}

// NewBatch returns an empty batch in tx that reads an application's recorded
// position with load and writes one with insert.
func NewBatch[Tx any](tx Tx,
	load func(ctx context.Context, tx Tx, applicationName string) (int64, bool, error),
	insert func(ctx context.Context, tx Tx, t recorder.Tracking) error) *Batch[Tx] {
	return &Batch[Tx]{Tx: tx, load: load, insert: insert, positions: map[string]int64{}, loaded: map[string]bool{}}
}

// Update runs fn in the batch's transaction for the tracking record t and
// moves the batch's position to it. When t does not advance the position it
// fails with recorder.ErrIntegrity and fn does not run. The recorded position
// is read the first time the batch sees the application.
func (b *Batch[Tx]) Update(ctx context.Context, t recorder.Tracking, fn func(ctx context.Context, tx Tx) error) error {
	if !b.loaded[t.ApplicationName] {
		id, ok, err := b.load(ctx, b.Tx, t.ApplicationName)
		if err != nil {
			return err
		}
		b.loaded[t.ApplicationName] = true
		if ok {
			b.positions[t.ApplicationName] = id
		}
	}
	if last, ok := b.positions[t.ApplicationName]; ok && t.NotificationID <= last {
		return TrackingNotAdvanced(t)
	}
	if fn != nil {
		if err := fn(ctx, b.Tx); err != nil {
			return err
		}
	}
	b.positions[t.ApplicationName] = t.NotificationID
	return nil
}

// WriteTracking writes each position the batch reached, at commit.
func (b *Batch[Tx]) WriteTracking(ctx context.Context) error {
	for name, id := range b.positions {
		if err := b.insert(ctx, b.Tx, recorder.Tracking{ApplicationName: name, NotificationID: id}); err != nil {
			return err
		}
	}
	return nil
}
