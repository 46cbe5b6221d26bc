package recorder

// StoredEvent is a domain event as a recorder sees it: whose it is, at which
// version, of which type, and the encoded (possibly compressed and encrypted) state.
type StoredEvent struct {
	// OriginatorID identifies the aggregate: a canonical lower-case hyphenated UUID,
	// or any text when the application uses text ids.
	OriginatorID string
	// OriginatorVersion is the aggregate's version after this event.
	OriginatorVersion int64
	// Topic names the event's type in the application's topic registry.
	Topic string
	// State is the encoded event, opaque to recorders.
	State []byte
	// TraceParent is the W3C trace context (a traceparent header value) of the
	// span that recorded the event, or empty when it was recorded outside a
	// trace. Backends that keep event metadata store it, and followers start the
	// span that processes the event as its child, so one trace follows an event
	// across applications and processes.
	TraceParent string
}

// Notification is a stored event with its position in the application's total
// order. On SQL and memory backends ids are 1, 2, 3...; on EventStoreDB they are
// commit positions in $all, strictly increasing but with gaps.
type Notification struct {
	StoredEvent
	ID int64
}

// Tracking records that the named upstream application's notification has been
// processed downstream. It is written in the same transaction as the downstream
// results, which is what makes processing exactly-once.
type Tracking struct {
	ApplicationName string
	NotificationID  int64
}

// EventQuery selects one originator's events by version.
type EventQuery struct {
	// After, when set, is an exclusive lower bound on the version (gt).
	After Bound
	// UpTo, when set, is an inclusive upper bound on the version (lte).
	UpTo Bound
	// Desc orders by descending version.
	Desc bool
	// Limit caps the number of events, applied after ordering; 0 means no limit.
	Limit int
}

// NotificationQuery selects notifications in ascending id order.
type NotificationQuery struct {
	// After is where selection begins: the notifications after this position
	// (id > its id). The zero value, Start(), selects from the first
	// notification.
	After Position
	// Inclusive also selects the notification at After's id (id >= its id),
	// as the notification log's section "1,10" includes notification 1. It
	// has no effect at Start().
	Inclusive bool
	// Limit is the maximum number of notifications returned; it must be positive.
	Limit int
	// Stop, when set, is an inclusive upper bound on the id.
	Stop Bound
	// Topics, when not empty, keeps only notifications with one of these topics.
	// The filter is applied before Limit.
	Topics []string
}

// MatchTopic reports whether topic passes a topic filter (empty filter = all).
func MatchTopic(topics []string, topic string) bool {
	if len(topics) == 0 {
		return true
	}
	for _, t := range topics {
		if t == topic {
			return true
		}
	}
	return false
}
