package sqlrows

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// scanRow is a one-column row: it scans id, or fails with err.
type scanRow struct {
	id  int64
	err error
}

func (r scanRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	*dest[0].(*int64) = r.id
	return nil
}

func TestScanTracking(t *testing.T) {
	noRows := errors.New("no rows")
	id, ok, err := ScanTracking(scanRow{id: 7}, noRows)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, int64(7), id)

	_, ok, err = ScanTracking(scanRow{err: fmt.Errorf("wrapped: %w", noRows)}, noRows)
	require.NoError(t, err)
	assert.False(t, ok)

	boom := errors.New("boom")
	_, _, err = ScanTracking(scanRow{err: boom}, noRows)
	assert.ErrorIs(t, err, boom)
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
