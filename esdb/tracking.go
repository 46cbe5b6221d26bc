package esdb

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Tracking in metadata (EVENTSTOREDB_TRACKING_IN_METADATA=true).
//
// EventStoreDB appends atomically to one stream only, so a process recorder
// cannot write a tracking row beside new events as SQL backends do. When one
// upstream notification makes a policy write to a single aggregate, the
// tracking entry {"downstream", "application", "notification_id"} travels in
// the metadata of that append's last event, and the append's expected
// revision commits events and position together or not at all. A batch for
// several aggregates is refused (recorder.ErrNotSupported).
//
// Where is the maximum? Entries are scattered over aggregate streams, so the
// recorder also appends tracking records to tracking-$<downstream>-$<upstream>:
// for an upstream event that produced nothing (InsertTracking), and, every
// hintEvery tracked appends, a hint that restates the last position. Neither
// is needed for atomicity: a hint only bounds the search. MaxTrackingID reads
// the last record of that stream (id H at $all position P) and scans $all
// forwards after P for later entries of the pair, taking the maximum. A hint
// lost in a crash costs a longer scan, never a wrong answer. A per-downstream
// index stream written after each append would not do: it is a second
// append, so a crash between the two would leave the index behind the truth
// and a restarted runner would process an event twice.
//
// The claim "every entry before P is at most H" assumes one writer per
// (downstream, upstream) pair at a time, which is how projection and process
// runners work (they process one upstream log sequentially). The recorder
// checks that positions advance before writing, against what it knows; a
// duplicate delivery to a deterministic policy then conflicts on the
// aggregate's expected revision (recorder.ErrIntegrity), which the runner
// ignores because HasTrackingID already holds.

// trackingTopic is the type of tracking records (not notifications).
const trackingTopic = "eventsourcing.eventstoredb:Tracking"

// hintEvery is how many tracked appends pass between two hints.
const hintEvery = 32

type trackingEntry struct {
	Downstream     string `json:"downstream"`
	Application    string `json:"application"`
	NotificationID int64  `json:"notification_id"`
}

type trackingMetadata struct {
	Tracking *trackingEntry `json:"tracking,omitempty"`
}

// trackingStream names the stream of a pair's tracking records.
func trackingStream(downstream, upstream string) string {
	return trackingPrefix + downstream + "-$" + upstream
}

// trackingState is what a factory knows of each upstream's position: a lower
// bound of the stored maximum, and a lock that serialises check-and-write.
type trackingState struct {
	mu    sync.Mutex
	pairs map[string]*pairState
	// signal wakes waiters after a tracked write.
	signal recorder.Signal
}

type pairState struct {
	mu      sync.Mutex // held across check and append
	known   bool       // max is the stored maximum as of a scan or a write
	max     int64
	has     bool // max is set
	written int  // tracked appends since the last hint
}

func newTrackingState() *trackingState { return &trackingState{pairs: map[string]*pairState{}} }

func (t *trackingState) pair(upstream string) *pairState {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pairs[upstream]
	if p == nil {
		p = &pairState{}
		t.pairs[upstream] = p
	}
	return p
}

// ProcessRecorder is the application recorder with tracking in event metadata.
type ProcessRecorder struct {
	Recorder
	downstream string
}

var _ recorder.ProcessRecorder = (*ProcessRecorder)(nil)

func (r *ProcessRecorder) entry(t recorder.Tracking) trackingEntry {
	return trackingEntry{Downstream: r.downstream, Application: t.ApplicationName, NotificationID: t.NotificationID}
}

// InsertEvents records the events of one aggregate; with WithTracking, the
// tracking position is written atomically in the same append.
func (r *ProcessRecorder) InsertEvents(ctx context.Context, events []recorder.StoredEvent, opts ...recorder.InsertOption) ([]int64, error) {
	const op = "insert events"
	o := recorder.ApplyInsertOptions(opts)
	if o.Tracking == nil {
		return r.insert(ctx, op, events, nil)
	}
	t := *o.Tracking
	if len(events) == 0 {
		return nil, r.InsertTracking(ctx, t)
	}
	for _, e := range events[1:] {
		if e.OriginatorID != events[0].OriginatorID {
			return nil, recorder.Errorf(recorder.ErrNotSupported, op,
				"notification %d of %q makes a policy write to %q and %q: EventStoreDB appends atomically to one stream only, "+
					"so the tracking position can travel with the events of one aggregate only; "+
					"record this process application in sqlite or postgres, or change the policy to write one aggregate per upstream event",
				t.NotificationID, t.ApplicationName, events[0].OriginatorID, e.OriginatorID)
		}
	}
	if err := checkBatch(op, events); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap(ctx, op, err)
	}
	p := r.f.tracking.pair(t.ApplicationName)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := r.checkAdvance(ctx, op, p, t); err != nil {
		return nil, err
	}
	entry, err := json.Marshal(trackingEntry{Downstream: r.downstream, Application: t.ApplicationName, NotificationID: t.NotificationID})
	if err != nil {
		return nil, recorder.Errorf(recorder.ErrProgramming, op, "encode tracking: %w", err)
	}
	md := r.f.scope.with(append([]byte(`"tracking":`), entry...))
	last := events[len(events)-1].OriginatorVersion
	ids, err := r.insert(ctx, op, events, func(e recorder.StoredEvent) []byte {
		if e.OriginatorVersion == last {
			return md
		}
		return r.f.scope.metadata
	})
	if err != nil {
		return nil, err
	}
	p.max, p.has, p.known = t.NotificationID, true, true
	p.written++
	if p.written >= hintEvery {
		// A hint only shortens later scans: its failure is logged, not returned.
		if err := r.appendTracking(ctx, t); err != nil {
			r.f.log.Warn("writing a tracking hint", "upstream", t.ApplicationName, "err", err)
		} else {
			p.written = 0
		}
	}
	r.f.tracking.signal.Notify()
	return ids, nil
}

// checkAdvance fails with ErrIntegrity unless t is past the pair's maximum.
// p.mu is held.
func (r *ProcessRecorder) checkAdvance(ctx context.Context, op string, p *pairState, t recorder.Tracking) error {
	if !p.known {
		maxID, ok, err := r.scanMax(ctx, t.ApplicationName)
		if err != nil {
			return wrap(ctx, op, err)
		}
		p.max, p.has, p.known = maxID, ok, true
	}
	if p.has && t.NotificationID <= p.max {
		return recorder.Errorf(recorder.ErrIntegrity, op, "tracking position %d of %q does not advance past %d", t.NotificationID, t.ApplicationName, p.max)
	}
	return nil
}

// appendTracking appends a tracking record to the pair's stream.
func (r *ProcessRecorder) appendTracking(ctx context.Context, t recorder.Tracking) error {
	e := r.entry(t)
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	md, err := json.Marshal(trackingMetadata{Tracking: &e})
	if err != nil {
		return err
	}
	ev := eventData([]recorder.StoredEvent{{Topic: trackingTopic, State: data}}, nil, func(recorder.StoredEvent) []byte { return md })
	ev[0].ContentType = esdbclient.ContentTypeJson
	return r.f.do(ctx, func(c *esdbclient.Client) error {
		_, err := c.AppendToStream(ctx, trackingStream(r.downstream, t.ApplicationName), esdbclient.AppendToStreamOptions{ExpectedRevision: esdbclient.Any{}}, ev...)
		return err
	})
}

// InsertTracking records that an upstream notification produced no events.
func (r *ProcessRecorder) InsertTracking(ctx context.Context, t recorder.Tracking) error {
	const op = "insert tracking"
	if err := ctx.Err(); err != nil {
		return wrap(ctx, op, err)
	}
	p := r.f.tracking.pair(t.ApplicationName)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := r.checkAdvance(ctx, op, p, t); err != nil {
		return err
	}
	if err := r.appendTracking(ctx, t); err != nil {
		return wrap(ctx, op, err)
	}
	p.max, p.has, p.known = t.NotificationID, true, true
	p.written = 0
	r.f.tracking.signal.Notify()
	return nil
}

// scanMax reads the stored maximum: the pair's last tracking record, then
// every later entry in $all.
func (r *ProcessRecorder) scanMax(ctx context.Context, upstream string) (int64, bool, error) {
	var maxID int64
	var has bool
	var from esdbclient.AllPosition = esdbclient.Start{}
	skip := uint64(0)
	last, err := r.readStream(ctx, trackingStream(r.downstream, upstream), esdbclient.Backwards, esdbclient.End{}, 1, nil)
	if err != nil {
		return 0, false, err
	}
	if len(last) == 1 {
		if e, ok := r.decodeEntry(last[0], upstream); ok {
			maxID, has = e.NotificationID, true
		}
		from, skip = last[0].Position, last[0].Position.Commit
	}
	const page = 1024
	for {
		events, err := r.readAllPage(ctx, esdbclient.Forwards, from, page)
		if err != nil {
			return 0, false, err
		}
		for _, ev := range events {
			if ev.Position.Commit == skip {
				continue
			}
			if e, ok := r.decodeEntry(ev, upstream); ok && (!has || e.NotificationID > maxID) {
				maxID, has = e.NotificationID, true
			}
		}
		if len(events) < page {
			return maxID, has, nil
		}
		from, skip = events[len(events)-1].Position, events[len(events)-1].Position.Commit
	}
}

var trackingKey = []byte(`"tracking"`)

// decodeEntry returns the tracking entry of this pair in an event's metadata.
func (r *ProcessRecorder) decodeEntry(e *esdbclient.RecordedEvent, upstream string) (trackingEntry, bool) {
	if !bytes.Contains(e.UserMetadata, trackingKey) {
		return trackingEntry{}, false
	}
	var md trackingMetadata
	if json.Unmarshal(e.UserMetadata, &md) != nil || md.Tracking == nil {
		return trackingEntry{}, false
	}
	if md.Tracking.Downstream != r.downstream || md.Tracking.Application != upstream {
		return trackingEntry{}, false
	}
	return *md.Tracking, true
}

// MaxTrackingID returns the stored maximum position of an upstream.
func (r *ProcessRecorder) MaxTrackingID(ctx context.Context, applicationName string) (int64, bool, error) {
	const op = "max tracking id"
	if err := ctx.Err(); err != nil {
		return 0, false, wrap(ctx, op, err)
	}
	maxID, ok, err := r.scanMax(ctx, applicationName)
	if err != nil {
		return 0, false, wrap(ctx, op, err)
	}
	p := r.f.tracking.pair(applicationName)
	p.mu.Lock()
	if ok && (!p.has || maxID > p.max) {
		p.max, p.has = maxID, true
	}
	p.known = true
	maxID, ok = p.max, p.has
	p.mu.Unlock()
	return maxID, ok, nil
}

// HasTrackingID reports whether the upstream's position has reached notificationID.
func (r *ProcessRecorder) HasTrackingID(ctx context.Context, applicationName string, notificationID int64) (bool, error) {
	const op = "has tracking id"
	if err := ctx.Err(); err != nil {
		return false, wrap(ctx, op, err)
	}
	p := r.f.tracking.pair(applicationName)
	p.mu.Lock()
	reached := p.has && p.max >= notificationID
	p.mu.Unlock()
	if reached {
		return true, nil
	}
	maxID, ok, err := r.MaxTrackingID(ctx, applicationName)
	if err != nil {
		return false, err
	}
	return ok && maxID >= notificationID, nil
}

// Wait returns when the upstream's position has reached notificationID.
func (r *ProcessRecorder) Wait(ctx context.Context, applicationName string, notificationID int64, timeout time.Duration) error {
	return recorder.WaitTracking(ctx, r.HasTrackingID, &r.f.tracking.signal, applicationName, notificationID, timeout)
}
