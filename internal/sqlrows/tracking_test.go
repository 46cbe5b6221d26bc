package sqlrows

import (
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
