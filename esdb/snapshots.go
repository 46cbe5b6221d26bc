package esdb

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// SnapshotRecorder stores snapshots in one stream per aggregate, named
// SnapshotStream(id). Snapshot revisions are not aggregate versions, so the
// version travels in the metadata as "originator_version".
type SnapshotRecorder struct {
	f *Factory
}

type snapshotMetadata struct {
	OriginatorVersion *int64 `json:"originator_version"`
}

func snapshotVersion(e *esdbclient.RecordedEvent) (int64, error) {
	var md snapshotMetadata
	if err := json.Unmarshal(e.UserMetadata, &md); err != nil || md.OriginatorVersion == nil {
		return 0, recorder.Errorf(recorder.ErrData, "select snapshots",
			"snapshot %d of %q has no originator_version in its metadata %q", e.EventNumber, e.StreamID, e.UserMetadata)
	}
	return *md.OriginatorVersion, nil
}

// InsertEvents stores exactly one snapshot, unless a snapshot of a later
// version is already stored (then nothing is written).
func (r *SnapshotRecorder) InsertEvents(ctx context.Context, events []recorder.StoredEvent, opts ...recorder.InsertOption) ([]int64, error) {
	const op = "insert snapshot"
	if len(events) == 0 {
		return nil, nil
	}
	if len(events) > 1 {
		return nil, recorder.Errorf(recorder.ErrProgramming, op, "%d snapshots in one call; store one at a time", len(events))
	}
	if o := recorder.ApplyInsertOptions(opts); o.Tracking != nil {
		return nil, recorder.Errorf(recorder.ErrProgramming, op, "snapshots carry no tracking record")
	}
	s := events[0]
	if err := checkOriginator(op, s.OriginatorID); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap(ctx, op, err)
	}
	stream := SnapshotStream(s.OriginatorID)
	ev := &Recorder{f: r.f}
	last, err := ev.readStream(ctx, stream, esdbclient.Backwards, esdbclient.End{}, 1, nil)
	if err != nil {
		return nil, wrap(ctx, op, err)
	}
	if len(last) == 1 {
		if v, err := snapshotVersion(last[0]); err == nil && v > s.OriginatorVersion {
			return nil, nil
		}
	}
	data := eventData(events, nil, func(e recorder.StoredEvent) []byte {
		return fmt.Appendf(nil, `{"originator_version":%d}`, e.OriginatorVersion)
	})
	err = r.f.do(ctx, func(c *esdbclient.Client) error {
		_, err := c.AppendToStream(ctx, stream, esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.Any{}}, data...)
		return err
	})
	if err != nil {
		return nil, &recorder.Error{Kind: kindOf(err), Op: op, OriginatorID: s.OriginatorID, Version: s.OriginatorVersion, Err: wrapCtx(ctx, err)}
	}
	return nil, nil
}

// SelectEvents selects snapshots by the aggregate version they were taken
// at. Snapshots are stored in ascending versions, so a descending query reads
// backwards from the end and stops at the first snapshot below its range:
// "the latest snapshot at or before v" is one short backwards read.
func (r *SnapshotRecorder) SelectEvents(ctx context.Context, originatorID string, q recorder.EventQuery) ([]recorder.StoredEvent, error) {
	const op = "select snapshots"
	if err := checkOriginator(op, originatorID); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap(ctx, op, err)
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if after, ok := q.After.Value(); ok {
		lo = after + 1
	}
	if upTo, ok := q.UpTo.Value(); ok {
		hi = upTo
	}
	if hi < lo {
		return nil, nil
	}
	dir, from := esdbclient.Forwards, esdbclient.StreamPosition(esdbclient.Start{})
	if q.Desc {
		dir, from = esdbclient.Backwards, esdbclient.End{}
	}
	var out []recorder.StoredEvent
	var bad error
	ev := &Recorder{f: r.f}
	_, err := ev.readStream(ctx, SnapshotStream(originatorID), dir, from, math.MaxInt64, func(e *esdbclient.RecordedEvent) bool {
		v, err := snapshotVersion(e)
		if err != nil {
			bad = err
			return false
		}
		if (q.Desc && v < lo) || (!q.Desc && v > hi) {
			return false
		}
		if v >= lo && v <= hi {
			out = append(out, recorder.StoredEvent{OriginatorID: originatorID, OriginatorVersion: v, Topic: e.EventType, State: e.Data})
		}
		return q.Limit <= 0 || len(out) < q.Limit
	})
	if err != nil {
		return nil, &recorder.Error{Kind: kindOf(err), Op: op, OriginatorID: originatorID, Err: wrapCtx(ctx, err)}
	}
	if bad != nil {
		return nil, bad
	}
	return out, nil
}
