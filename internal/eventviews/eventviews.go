// Package eventviews selects the events a repository replays as views of a
// recorder's own memory, where the recorder can hand them out so (the memory
// recorder), into pooled slices: a replay only reads states, so a get then
// copies no state and allocates nothing in the recorder.
package eventviews

import (
	"context"
	"sync"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Viewer is implemented by recorders that can hand a reader an
// originator's events with their states as views of the recorder's own
// memory instead of copies.
type Viewer interface {
	AppendEventViews(ctx context.Context, dst []recorder.StoredEvent, originatorID string, q recorder.EventQuery) ([]recorder.StoredEvent, error)
}

// replayPool holds the slices that replays select events into.
var replayPool = sync.Pool{New: func() any { return new([]recorder.StoredEvent) }}

// maxPooledReplay bounds the slices kept in replayPool, so that one get of
// a long history does not keep its room alive.
const maxPooledReplay = 1024

// Select selects events to replay: as views into a pooled slice when the
// recorder is a Viewer (buf is then the pooled slice, for Release), else
// with SelectEvents (buf is nil).
func Select(ctx context.Context, events recorder.AggregateRecorder, sid string, q recorder.EventQuery) (stored []recorder.StoredEvent, buf *[]recorder.StoredEvent, err error) {
	v, ok := events.(Viewer)
	if !ok {
		stored, err = events.SelectEvents(ctx, sid, q)
		return stored, nil, err
	}
	buf = replayPool.Get().(*[]recorder.StoredEvent)
	stored, err = v.AppendEventViews(ctx, (*buf)[:0], sid, q)
	return stored, buf, err
}

// Release gives back the pooled slice of a replay once its events have
// been applied. The views are not cleared (clearing pointers costs a write
// barrier each while the collector runs, which is most of the time): a
// pooled slice may keep a store's memory alive until the next reads
// overwrite it or the collector empties the pool, two cycles at most.
func Release(buf *[]recorder.StoredEvent, stored []recorder.StoredEvent) {
	if buf == nil || cap(stored) > maxPooledReplay {
		return
	}
	*buf = stored[:0]
	replayPool.Put(buf)
}
