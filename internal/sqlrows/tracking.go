package sqlrows

import (
	"database/sql"
	"errors"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// The tracking table has one row per upstream application: its name
// (application_name, the key) and the last notification id processed
// (notification_id). SQLite and PostgreSQL agree on the statements below,
// but for their placeholders, which the caller passes.

// UpsertTrackingSQL records a position in table only if it advances the
// recorded one: otherwise it affects no row. params are the two
// placeholders, application name then notification id, in the dialect's
// spelling ("?, ?" or "$1, $2").
func UpsertTrackingSQL(table, params string) string {
	return "INSERT INTO " + table + " AS k (application_name, notification_id) VALUES (" + params + ")" +
		" ON CONFLICT (application_name) DO UPDATE SET notification_id = EXCLUDED.notification_id" +
		" WHERE k.notification_id < EXCLUDED.notification_id"
}

// SelectTrackingSQL reads an application's position from table; param is
// the placeholder of the application name ("?" or "$1").
func SelectTrackingSQL(table, param string) string {
	return "SELECT notification_id FROM " + table + " WHERE application_name = " + param
}

// TrackingNotAdvanced is the integrity error of a position that does not
// advance the recorded one (the upsert affected no row).
func TrackingNotAdvanced(t recorder.Tracking) error {
	return recorder.Errorf(recorder.ErrIntegrity, "insert tracking",
		"application %q: notification id %d does not advance the recorded position", t.ApplicationName, t.NotificationID)
}

// ScanTracking scans the position a SelectTrackingSQL row holds: found, or
// not found when the scan fails with noRows (the driver's "no rows" error:
// sql.ErrNoRows, pgx.ErrNoRows). Any other error is returned as it is, for
// the caller to wrap.
func ScanTracking[R interface{ Scan(dest ...any) error }](row R, noRows error) (int64, bool, error) {
	var id int64
	switch err := row.Scan(&id); {
	case err == nil:
		return id, true, nil
	case errors.Is(err, noRows):
		return 0, false, nil
	default:
		return 0, false, err
	}
}

// Upserted is the outcome of an UpsertTrackingSQL run through database/sql:
// nil when it advanced the position, TrackingNotAdvanced when it affected no
// row.
func Upserted(res sql.Result, t recorder.Tracking) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return TrackingNotAdvanced(t)
	}
	return nil
}
