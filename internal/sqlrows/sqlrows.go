// Package sqlrows holds what the SQL recorders (recorder/sqlite over
// database/sql, recorder/postgres over pgx) and the SQL view bases
// (projection/sqlview, projection/pgview) share: the loops that scan stored
// events and notifications, the statements, reads and error of the tracking
// table, the originator a conflict names, the HoldInsertEvents test hook, and
// a view base's tracking recorder (Tracker, with the positions of its
// batches). The event statements stay with each backend, whose dialects
// differ in placeholders and array handling.
package sqlrows

import "github.com/eventsourcing-go/eventsourcing/recorder"

// Rows is what the loops need of a result: *sql.Rows and pgx.Rows both have
// it. Closing stays with the caller, since the two Close methods differ.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// Events scans rows of (originator_version, topic, state), followed by the
// trace context when traced, into events of originatorID. The trace context
// column must read NULL as "" (coalesce in the statement). It returns an
// empty, non-nil slice when there are no rows.
//
// Each row is scanned in place into the result, through one destination
// slice for the whole call, so that a row costs no allocation beyond the
// values the driver makes.
func Events[R Rows](rows R, originatorID string, traced bool) ([]recorder.StoredEvent, error) {
	events := []recorder.StoredEvent{}
	var dest [4]any
	n := 3
	if traced {
		n = 4
	}
	for rows.Next() {
		events = append(events, recorder.StoredEvent{OriginatorID: originatorID})
		e := &events[len(events)-1]
		dest[0], dest[1], dest[2] = &e.OriginatorVersion, &e.Topic, &e.State
		if traced {
			dest[3] = &e.TraceParent
		}
		if err := rows.Scan(dest[:n]...); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return events, nil
}

// Notifications scans rows of (id, originator_id, originator_version,
// topic, state), followed by the trace context when traced, into
// notifications; capacity is the result's initial capacity (the query's
// limit, bounded by the caller). The trace context column must read NULL as
// "" (coalesce in the statement).
func Notifications[R Rows](rows R, capacity int, traced bool) ([]recorder.Notification, error) {
	ns := make([]recorder.Notification, 0, capacity)
	var dest [6]any
	n := 5
	if traced {
		n = 6
	}
	for rows.Next() {
		ns = append(ns, recorder.Notification{})
		x := &ns[len(ns)-1]
		dest[0], dest[1], dest[2], dest[3], dest[4] = &x.ID, &x.OriginatorID, &x.OriginatorVersion, &x.Topic, &x.State
		if traced {
			dest[5] = &x.TraceParent
		}
		if err := rows.Scan(dest[:n]...); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return ns, nil
}
