package grpcapp

import "github.com/eventsourcing-go/eventsourcing/recorder"

// The protobuf API keeps the reference library's wire format, where a
// notification position and an id bound are optional int64 fields (absent
// for the start of the log and for no bound). Going out, optionalInt takes
// a Position's ID or a Bound's Value; coming in, these read them back.

// positionFromPB reads a wire position: the start when absent.
func positionFromPB(after *int64) recorder.Position {
	if after == nil {
		return recorder.Start()
	}
	return recorder.After(*after)
}

// boundFromPB reads a wire bound: none when absent.
func boundFromPB(v *int64) recorder.Bound {
	if v == nil {
		return recorder.Bound{}
	}
	return recorder.Bounded(*v)
}
