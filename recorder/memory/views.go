package memory

import (
	"context"
	"slices"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// AppendEventViews is SelectEvents for readers that only read the states,
// such as the repository replaying an aggregate: it appends the selected
// events to dst and returns the extended slice, with states that are views of
// the store's own memory instead of copies. The store never writes a state
// again once recorded, so a view stays valid and unchanged for as long as it
// is held, but the caller must never write into one.
//
// A get of an aggregate then costs no allocation in the store (none at all
// when dst has room), where SelectEvents makes two and copies every state.
func (r *Recorder) AppendEventViews(ctx context.Context, dst []recorder.StoredEvent, originatorID string, q recorder.EventQuery) ([]recorder.StoredEvent, error) {
	if err := r.check(ctx, "select events"); err != nil {
		return dst, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, top, n, _ := r.eventRange(originatorID, q)
	if n == 0 {
		return dst, nil
	}
	start := len(dst)
	dst = slices.Grow(dst, n)[:start+n]
	out := dst[start:]
	originator := r.bytes.string(r.streams.at(int(s)).id)
	nid := top
	for k := range n {
		rec := r.rec(nid)
		j := k
		if !q.Desc {
			j = n - 1 - k // the walk runs down the versions
		}
		e := &out[j] // field by field, as in SelectEvents
		e.OriginatorID = originator
		e.OriginatorVersion = rec.version
		e.Topic = r.topics[rec.topic]
		e.State = r.bytes.bytes(rec.state)
		e.TraceParent = r.traceOf(nid)
		nid = rec.prev
	}
	return dst, nil
}
