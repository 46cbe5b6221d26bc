package sqlrows

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func TestTrackingStatements(t *testing.T) {
	assert.Equal(t, "INSERT INTO tr AS k (application_name, notification_id) VALUES (?, ?)"+
		" ON CONFLICT (application_name) DO UPDATE SET notification_id = EXCLUDED.notification_id"+
		" WHERE k.notification_id < EXCLUDED.notification_id", UpsertTrackingSQL("tr", "?, ?"))
	assert.Equal(t, "SELECT notification_id FROM tr WHERE application_name = $1", SelectTrackingSQL("tr", "$1"))
	err := TrackingNotAdvanced(recorder.Tracking{ApplicationName: "up", NotificationID: 3})
	assert.ErrorIs(t, err, recorder.ErrIntegrity)
	assert.Contains(t, err.Error(), `"up"`)
}

// result is a database/sql result that affected n rows, or fails with err.
type result struct {
	n   int64
	err error
}

func (r result) LastInsertId() (int64, error) { return 0, errors.ErrUnsupported }
func (r result) RowsAffected() (int64, error) { return r.n, r.err }

func TestUpserted(t *testing.T) {
	tr := recorder.Tracking{ApplicationName: "up", NotificationID: 3}
	assert.NoError(t, Upserted(result{n: 1}, tr))
	assert.ErrorIs(t, Upserted(result{n: 0}, tr), recorder.ErrIntegrity)
	boom := errors.New("boom")
	assert.ErrorIs(t, Upserted(result{err: boom}, tr), boom)
}
