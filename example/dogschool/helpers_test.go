package dogschool_test

import "github.com/eventsourcing-go/eventsourcing/recorder"

func recorderQuery(start int64) recorder.NotificationQuery {
	return recorder.NotificationQuery{After: recorder.After(start), Inclusive: true, Limit: 1}
}

func trackingOf(id int64) recorder.Tracking {
	return recorder.Tracking{ApplicationName: "DogSchool", NotificationID: id}
}
