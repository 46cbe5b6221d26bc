package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Stream name prefixes the module reserves. They contain "-$" so that no
// canonical UUID collides with them; text originator ids that start with them
// are refused.
const (
	snapshotPrefix = "snapshot-$"
	trackingPrefix = "tracking-$"
)

// SnapshotStream returns the name of the stream holding an aggregate's snapshots.
func SnapshotStream(originatorID string) string { return snapshotPrefix + originatorID }

// emptyMetadata is the metadata of an event without any: a JSON object, as
// other EventStoreDB tools expect.
var emptyMetadata = []byte("{}")

// Recorder is the aggregate recorder of events (recorder.PurposeEvents) and,
// when built by ApplicationRecorder, the application recorder: one stream per aggregate,
// named by its originator id, with versions equal to stream revisions (so
// aggregates start at version 0), and $all commit positions as notification ids.
type Recorder struct {
	f           *Factory
	application bool
}

var (
	_ recorder.ApplicationRecorder = (*Recorder)(nil)
	_ recorder.AggregateRecorder   = (*SnapshotRecorder)(nil)
)

// checkOriginator refuses ids that are not aggregate stream names.
func checkOriginator(op, id string) error {
	switch {
	case id == "":
		return recorder.Errorf(recorder.ErrProgramming, op, "empty originator id")
	case strings.HasPrefix(id, "$"):
		return recorder.Errorf(recorder.ErrProgramming, op, "originator id %q starts with $, which EventStoreDB reserves for system streams", id)
	case strings.HasPrefix(id, snapshotPrefix), strings.HasPrefix(id, trackingPrefix):
		return recorder.Errorf(recorder.ErrProgramming, op, "originator id %q starts with a prefix this module reserves (%q, %q)", id, snapshotPrefix, trackingPrefix)
	}
	return nil
}

// checkBatch applies the batch rules before any I/O: one originator (appends
// are atomic within one stream only), versions ascending by exactly one.
func checkBatch(op string, events []recorder.StoredEvent) error {
	id := events[0].OriginatorID
	if err := checkOriginator(op, id); err != nil {
		return err
	}
	if events[0].OriginatorVersion < 0 {
		return &recorder.Error{Kind: recorder.ErrProgramming, Op: op, OriginatorID: id, Version: events[0].OriginatorVersion,
			Err: errors.New("negative version")}
	}
	for i, e := range events[1:] {
		if e.OriginatorID != id {
			return recorder.Errorf(recorder.ErrProgramming, op,
				"the batch holds events of %q and %q: EventStoreDB appends atomically to one stream only, so save one aggregate per call", id, e.OriginatorID)
		}
		if want := events[i].OriginatorVersion + 1; e.OriginatorVersion != want {
			return &recorder.Error{Kind: recorder.ErrIntegrity, Op: op, OriginatorID: id, Version: e.OriginatorVersion,
				Err: fmt.Errorf("versions of a batch must ascend by one (stream revisions have no gaps): want %d", want)}
		}
	}
	return nil
}

// expectedRevision is the concurrency check of an append whose first event
// has version v: the stream must not exist (v = 0) or end at revision v-1.
func expectedRevision(v int64) esdbclient.ExpectedRevision {
	if v == 0 {
		return esdbclient.NoStream{}
	}
	return esdbclient.Revision(uint64(v - 1))
}

// eventData encodes events. Ids are drawn once per InsertEvents call, before
// the first attempt, so that the module's own retry of an append that did
// commit is answered idempotently by the server. They are not derived from
// (originator id, version) alone: the server would then take a competing
// writer's append of the same version as a retry of the first and report
// success for an event it did not store.
func eventData(events []recorder.StoredEvent, plain []byte, metadata func(recorder.StoredEvent) []byte) []esdbclient.EventData {
	out := make([]esdbclient.EventData, len(events))
	for i, e := range events {
		md := plain
		if metadata != nil {
			md = metadata(e)
		}
		md = withTraceContext(md, e.TraceParent)
		out[i] = esdbclient.EventData{
			EventID: uuid.New(),
			// The state may be compressed or encrypted, so it is binary.
			ContentType: esdbclient.ContentTypeBinary,
			EventType:   e.Topic,
			Data:        e.State,
			Metadata:    md,
		}
	}
	return out
}

// InsertEvents appends the batch to the aggregate's stream in one atomic call,
// expecting the stream to end just before the batch's first version. A wrong
// expected version fails with recorder.ErrIntegrity. The application recorder
// returns each event's $all commit position.
func (r *Recorder) InsertEvents(ctx context.Context, events []recorder.StoredEvent, opts ...recorder.InsertOption) ([]int64, error) {
	const op = "insert events"
	if o := recorder.ApplyInsertOptions(opts); o.Tracking != nil {
		return nil, recorder.Errorf(recorder.ErrProgramming, op, "a tracking record needs the process recorder (%s=true)", KeyTrackingInMetadata)
	}
	return r.insert(ctx, op, events, nil)
}

// insert is InsertEvents with optional metadata per event (the process recorder's tracking).
func (r *Recorder) insert(ctx context.Context, op string, events []recorder.StoredEvent, metadata func(recorder.StoredEvent) []byte) ([]int64, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if err := checkBatch(op, events); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap(ctx, op, err)
	}
	stream, first := events[0].OriginatorID, events[0].OriginatorVersion
	data := eventData(events, r.f.scope.metadata, metadata)
	var res *esdbclient.WriteResult
	err := r.f.do(ctx, func(c *esdbclient.Client) error {
		var err error
		res, err = c.AppendToStream(ctx, stream, esdbclient.AppendToStreamOptions{ExpectedRevision: expectedRevision(first)}, data...)
		return err
	})
	if err != nil {
		if code(err) == esdbclient.ErrorCodeWrongExpectedVersion && first > 0 && ctx.Err() == nil {
			if _, exists, serr := r.lastRevision(ctx, stream); serr == nil && !exists {
				// The usual cause: an aggregate type that starts at version 1.
				err = fmt.Errorf("%w; the aggregate's stream does not exist, so its first event must have version 0: "+
					"EventStoreDB stream revisions start at 0, so give the aggregate type a method InitialVersion() int64 { return 0 }", err)
			}
		}
		return nil, &recorder.Error{Kind: kindOf(err), Op: op, OriginatorID: stream, Version: first, Err: wrapCtx(ctx, err)}
	}
	if !r.application {
		return nil, nil
	}
	return r.positions(ctx, op, stream, first, data, res.CommitPosition)
}

// wrapCtx names the context's error beside a client error it caused.
func wrapCtx(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// readStream reads up to count events of a stream; a missing (or soft-deleted)
// stream is an empty result. keep, when set, is called for each event and
// stops the read when it returns false.
func (r *Recorder) readStream(ctx context.Context, stream string, dir esdbclient.Direction, from esdbclient.StreamPosition, count uint64, keep func(*esdbclient.RecordedEvent) bool) ([]*esdbclient.RecordedEvent, error) {
	// Room for a small aggregate's events saves regrowing from nothing.
	out := make([]*esdbclient.RecordedEvent, 0, min(count, 16))
	err := r.f.do(ctx, func(c *esdbclient.Client) error {
		rs, err := c.ReadStream(ctx, stream, esdbclient.ReadStreamOptions{Direction: dir, From: from}, count)
		if err != nil {
			return err
		}
		out, err = collect(rs, out[:0], keep)
		if err != nil && code(err) == esdbclient.ErrorCodeResourceNotFound {
			return nil
		}
		return err
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, err
}

// lastRevision returns the revision of a stream's last event.
func (r *Recorder) lastRevision(ctx context.Context, stream string) (uint64, bool, error) {
	got, err := r.readStream(ctx, stream, esdbclient.Backwards, esdbclient.End{}, 1, nil)
	if err != nil || len(got) == 0 {
		return 0, false, err
	}
	return got[0].EventNumber, true, nil
}

// SelectEvents reads one aggregate's events by version (= stream revision).
func (r *Recorder) SelectEvents(ctx context.Context, originatorID string, q recorder.EventQuery) ([]recorder.StoredEvent, error) {
	const op = "select events"
	if err := checkOriginator(op, originatorID); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap(ctx, op, err)
	}
	lo := int64(0) // the first version wanted
	if after, ok := q.After.Value(); ok && after >= 0 {
		lo = after + 1
	}
	hi := int64(math.MaxInt64) // the last version wanted
	upTo, bounded := q.UpTo.Value()
	if bounded {
		hi = upTo
	}
	if hi < lo {
		return nil, nil
	}
	count := uint64(math.MaxInt64)
	if bounded {
		count = uint64(hi - lo + 1)
	}
	if q.Limit > 0 {
		count = min(count, uint64(q.Limit))
	}
	var events []*esdbclient.RecordedEvent
	var err error
	if !q.Desc {
		events, err = r.readStream(ctx, originatorID, esdbclient.Forwards, esdbclient.Revision(uint64(lo)), count,
			func(e *esdbclient.RecordedEvent) bool { return int64(e.EventNumber) <= hi })
	} else {
		var from esdbclient.StreamPosition = esdbclient.End{}
		if bounded {
			// A backwards read from a revision past the end is not portable
			// across server versions; start at the last revision instead.
			last, ok, lerr := r.lastRevision(ctx, originatorID)
			if lerr != nil {
				return nil, wrap(ctx, op, lerr)
			}
			if !ok {
				return nil, nil
			}
			from = esdbclient.Revision(min(last, uint64(hi)))
		}
		events, err = r.readStream(ctx, originatorID, esdbclient.Backwards, from, count,
			func(e *esdbclient.RecordedEvent) bool { return int64(e.EventNumber) >= lo })
	}
	if err != nil {
		return nil, &recorder.Error{Kind: kindOf(err), Op: op, OriginatorID: originatorID, Err: wrapCtx(ctx, err)}
	}
	out := make([]recorder.StoredEvent, len(events))
	for i, e := range events {
		out[i] = storedEvent(e)
	}
	return out, nil
}

func storedEvent(e *esdbclient.RecordedEvent) recorder.StoredEvent {
	return recorder.StoredEvent{OriginatorID: e.StreamID, OriginatorVersion: int64(e.EventNumber), Topic: e.EventType, State: e.Data,
		TraceParent: traceParentOf(e.UserMetadata)}
}

// persistentConfig matches the types of persistent-subscription configuration events.
var persistentConfig = regexp.MustCompile(`^PersistentConfig\d+$`)

// isNotification reports whether an event of $all is one of the
// application's notifications: not a system event or stream, not a
// snapshot, not a tracking record, not another application's (scope.go).
func (f *Factory) isNotification(e *esdbclient.RecordedEvent) bool {
	return isNotification(e) && f.scope.owns(e)
}

// isNotification reports whether an event of $all is a notification of
// some application: not a system event or stream, not a snapshot, not a
// tracking record.
func isNotification(e *esdbclient.RecordedEvent) bool {
	s, t := e.StreamID, e.EventType
	if strings.HasPrefix(t, "$") || strings.HasPrefix(s, "$") || s == "" {
		return false
	}
	if strings.HasPrefix(s, snapshotPrefix) || strings.HasPrefix(s, trackingPrefix) {
		return false
	}
	return !(strings.HasPrefix(t, "PersistentConfig") && persistentConfig.MatchString(t))
}

func notification(e *esdbclient.RecordedEvent) recorder.Notification {
	return recorder.Notification{StoredEvent: storedEvent(e), ID: int64(e.Position.Commit)}
}

// position is the $all position of a notification id (commit = prepare for
// events written through gRPC).
func position(id int64) esdbclient.Position {
	return esdbclient.Position{Commit: uint64(id), Prepare: uint64(id)}
}

// readAllPage reads up to count records of $all.
func (r *Recorder) readAllPage(ctx context.Context, dir esdbclient.Direction, from esdbclient.AllPosition, count uint64) ([]*esdbclient.RecordedEvent, error) {
	var out []*esdbclient.RecordedEvent
	err := r.f.do(ctx, func(c *esdbclient.Client) error {
		rs, err := c.ReadAll(ctx, esdbclient.ReadAllOptions{Direction: dir, From: from}, count)
		if err != nil {
			return err
		}
		out, err = collect(rs, out[:0], nil)
		return err
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, err
}

// collect appends the events of a read (of a stream or of $all) to out
// until its end, and closes it. keep, when set, is called for each event
// and ends the read when it returns false.
func collect(rs *esdbclient.ReadStream, out []*esdbclient.RecordedEvent, keep func(*esdbclient.RecordedEvent) bool) ([]*esdbclient.RecordedEvent, error) {
	defer rs.Close()
	for {
		e, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if keep != nil && !keep(e.Event) {
			return out, nil
		}
		out = append(out, e.Event)
	}
}

// SelectNotifications reads $all forwards after q.After (from its id when
// q.Inclusive), skipping system events, snapshots and tracking records
// and keeping q.Topics, until q.Limit notifications or past q.Stop.
func (r *Recorder) SelectNotifications(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error) {
	const op = "select notifications"
	if !r.application {
		return nil, recorder.Errorf(recorder.ErrProgramming, op, "an aggregate recorder has no notification log")
	}
	if q.Limit <= 0 {
		return nil, recorder.Errorf(recorder.ErrProgramming, op, "limit %d is not positive", q.Limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap(ctx, op, err)
	}
	start, hasStart := q.After.ID()
	stop, hasStop := q.Stop.Value()
	if hasStart && start < 0 {
		return nil, recorder.Errorf(recorder.ErrProgramming, op, "start %d is negative", start)
	}
	if hasStop && hasStart && stop < start {
		return nil, nil
	}
	// Filtering happens here ($all reads have no server-side filter in the
	// v4 client), so pages are a little larger than the limit, and larger
	// still when topics may drop most events.
	page := uint64(min(max(q.Limit+8, 64), 4096))
	if len(q.Topics) > 0 {
		page = 1024
	}
	var from esdbclient.AllPosition = esdbclient.Start{}
	skip := int64(-1) // a commit position to drop: the exclusive start, or the last of the previous page
	if hasStart {
		from = position(start)
		if !q.Inclusive {
			skip = start
		}
	}
	// floor drops records before a start that is no record's position: the
	// read then begins at a record before it.
	floor := int64(-1)
	var out []recorder.Notification
	for {
		events, err := r.readAllPage(ctx, esdbclient.Forwards, from, page)
		if err != nil {
			if hasStart && ctx.Err() == nil && grpcKind(err) == recorder.ErrData && from == position(start) {
				// A start that is not a record's position (ids are commit
				// positions, and "1,10" or a section's Next name none)
				// fails the read. Past the head that is just the end of the
				// log: answer empty. Otherwise read from the first record at
				// or after it, found from the nearer end of $all.
				head, ok, herr := r.head(ctx)
				if herr == nil && (!ok || uint64(start) > head) {
					return nil, nil
				}
				if herr == nil {
					from, skip, herr = r.recordBefore(ctx, start, head)
					if herr == nil {
						floor = start
						continue
					}
				}
				if herr != nil {
					err = herr
				}
			}
			return nil, wrap(ctx, op, err)
		}
		for _, e := range events {
			id := int64(e.Position.Commit)
			if id == skip || id < floor {
				continue
			}
			if hasStop && id > stop {
				return out, nil
			}
			if !r.f.isNotification(e) || !recorder.MatchTopic(q.Topics, e.EventType) {
				continue
			}
			out = append(out, notification(e))
			if len(out) == q.Limit {
				return out, nil
			}
		}
		if uint64(len(events)) < page {
			return out, nil
		}
		last := events[len(events)-1].Position
		from, skip = last, int64(last.Commit)
	}
}

// recordBefore returns where a forward read of $all finds the first record
// at or after commit position p, which is no record's position: the last
// record before p (to be skipped), or the start of $all when there is none.
// It reads backwards from the head when p is nearer the head than the
// start; a forward read from the start that drops records before p costs
// as much as p is far from the start.
func (r *Recorder) recordBefore(ctx context.Context, p int64, head uint64) (esdbclient.AllPosition, int64, error) {
	if uint64(p) <= head-uint64(p) {
		return esdbclient.Start{}, -1, nil
	}
	var from esdbclient.AllPosition = esdbclient.End{}
	const page = 256
	for {
		events, err := r.readAllPage(ctx, esdbclient.Backwards, from, page)
		if err != nil {
			return nil, 0, err
		}
		for _, e := range events {
			if int64(e.Position.Commit) < p {
				return e.Position, int64(e.Position.Commit), nil
			}
		}
		if len(events) < page {
			return esdbclient.Start{}, -1, nil
		}
		// Backwards reads exclude their start.
		from = events[len(events)-1].Position
	}
}

// SparseNotificationIDs reports that notification ids are $all commit
// positions, not counts of events: followers report their lag in positions.
func (r *Recorder) SparseNotificationIDs() bool { return true }

// head returns the commit position of the last record of $all, system
// records included.
func (r *Recorder) head(ctx context.Context) (uint64, bool, error) {
	got, err := r.readAllPage(ctx, esdbclient.Backwards, esdbclient.End{}, 1)
	if err != nil || len(got) == 0 {
		return 0, false, err
	}
	return got[0].Position.Commit, true, nil
}

// MaxNotificationID reads $all backwards, skipping system records (the tail
// of $all is often system records), to the last notification.
func (r *Recorder) MaxNotificationID(ctx context.Context) (int64, bool, error) {
	const op = "max notification id"
	if !r.application {
		return 0, false, recorder.Errorf(recorder.ErrProgramming, op, "an aggregate recorder has no notification log")
	}
	if err := ctx.Err(); err != nil {
		return 0, false, wrap(ctx, op, err)
	}
	var from esdbclient.AllPosition = esdbclient.End{}
	page := uint64(16)
	for {
		events, err := r.readAllPage(ctx, esdbclient.Backwards, from, page)
		if err != nil {
			return 0, false, wrap(ctx, op, err)
		}
		for _, e := range events {
			if r.f.isNotification(e) {
				return int64(e.Position.Commit), true, nil
			}
		}
		if uint64(len(events)) < page {
			return 0, false, nil
		}
		// Backwards reads exclude their start, so the next page begins at the last record seen.
		from = events[len(events)-1].Position
		page = min(page*4, 4096)
	}
}

// Subscribe opens a catch-up subscription to $all after the position (from
// the start at recorder.Start()), filtered on the server by topic (or
// excluding system events).
// ctx bounds the subscription's life as well as its opening; Close ends it.
func (r *Recorder) Subscribe(ctx context.Context, after recorder.Position, topics []string) (recorder.Subscription, error) {
	if !r.application {
		return nil, recorder.Errorf(recorder.ErrProgramming, "subscribe", "an aggregate recorder has no notification log")
	}
	return newSubscription(ctx, r.f, after, topics)
}
