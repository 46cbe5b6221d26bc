package projection

import (
	"context"
	"sync"
	"time"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// MemoryView is the base of in-memory views: a tracking recorder with a lock
// that also guards the fields of the view that embeds it.
//
//	type CountView struct {
//		*projection.MemoryView
//		dogs int
//	}
//
//	func (v *CountView) IncrDogs(ctx context.Context, t recorder.Tracking) error {
//		return v.Update(ctx, t, func() error { v.dogs++; return nil })
//	}
//
//	func (v *CountView) Dogs() (n int) { v.Read(func() { n = v.dogs }); return n }
type MemoryView struct {
	mu        sync.RWMutex
	positions map[string]int64
	signal    recorder.Signal
}

var _ View = (*MemoryView)(nil)

// NewMemoryView returns an empty view.
func NewMemoryView() *MemoryView { return &MemoryView{positions: map[string]int64{}} }

// Update runs fn and records t, atomically: under the view's lock, and only
// when t advances the position (else recorder.ErrIntegrity and fn does not
// run). When fn fails, t is not recorded; fn must then leave the view as it
// found it.
func (v *MemoryView) Update(ctx context.Context, t recorder.Tracking, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.check(t); err != nil {
		return err
	}
	if fn != nil {
		if err := fn(); err != nil {
			return err
		}
	}
	v.positions[t.ApplicationName] = t.NotificationID
	v.signal.Notify()
	return nil
}

// Read runs fn under the view's read lock, for queries.
func (v *MemoryView) Read(fn func()) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	fn()
}

func (v *MemoryView) check(t recorder.Tracking) error {
	if last, ok := v.positions[t.ApplicationName]; ok && t.NotificationID <= last {
		return recorder.Errorf(recorder.ErrIntegrity, "insert tracking",
			"application %q: notification id %d does not advance the recorded position %d", t.ApplicationName, t.NotificationID, last)
	}
	return nil
}

// InsertTracking records t alone; see recorder.TrackingRecorder.
func (v *MemoryView) InsertTracking(ctx context.Context, t recorder.Tracking) error {
	return v.Update(ctx, t, nil)
}

// MaxTrackingID returns the last recorded position of the application.
func (v *MemoryView) MaxTrackingID(_ context.Context, applicationName string) (int64, bool, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	id, ok := v.positions[applicationName]
	return id, ok, nil
}

// HasTrackingID reports whether the position has reached notificationID.
func (v *MemoryView) HasTrackingID(ctx context.Context, applicationName string, notificationID int64) (bool, error) {
	return recorder.HasTrackingID(ctx, v.MaxTrackingID, applicationName, notificationID)
}

// Wait returns when the position has reached notificationID; see recorder.WaitFor.
func (v *MemoryView) Wait(ctx context.Context, applicationName string, notificationID int64, timeout time.Duration) error {
	return recorder.WaitTracking(ctx, v.HasTrackingID, &v.signal, applicationName, notificationID, timeout)
}

// ResetTracking forgets every position and runs fn (which empties the
// view's own fields, and may be nil) under the view's lock: the core of a
// view's Reset, for rebuilds.
func (v *MemoryView) ResetTracking(fn func()) {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.positions)
	if fn != nil {
		fn()
	}
}
