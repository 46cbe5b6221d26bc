package eventsourcing

import (
	"fmt"
	"reflect"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/internal/ids"
)

// Event is a domain event: the envelope every event carries and the payload
// (Data) that says what happened. Data is a plain struct value registered in the
// application's Types under a stable topic.
//
// Events are values and are treated as immutable once triggered.
type Event struct {
	// OriginatorID is the id of the aggregate the event belongs to.
	OriginatorID uuid.UUID
	// OriginatorVersion is the aggregate's version after the event.
	OriginatorVersion int64
	// Timestamp is when the event was triggered, in UTC, truncated to microseconds.
	Timestamp time.Time
	// OriginatorTopic is the topic of the aggregate's type on the creation event
	// (empty on later events). Create leaves it empty; Save fills it in from the
	// application's Types, and decoding sets it from the stored state.
	OriginatorTopic string
	// Data is the payload, a registered struct value such as Dog.Registered.
	Data any

	// creation marks the event Create made until Save gives it its aggregate
	// type's topic, which marks it from then on.
	creation bool
}

// IsCreation reports whether e is the event that created its aggregate.
func (e Event) IsCreation() bool { return e.creation || e.OriginatorTopic != "" }

// Aggregate is the base that aggregate types embed. It holds the id, version,
// timestamps and the events triggered since the aggregate was last saved.
//
//	type Dog struct {
//		eventsourcing.Aggregate
//		Name   string
//		Tricks []string
//	}
//
//	func (d *Dog) Apply(data any) {
//		switch e := data.(type) {
//		case Registered:
//			d.Name = e.Name
//		case TrickAdded:
//			d.Tricks = append(d.Tricks, e.Trick)
//		}
//	}
//
// An Aggregate is not safe for concurrent use; each goroutine gets its own copy
// from the repository.
type Aggregate struct {
	id         uuid.UUID
	version    int64
	createdOn  time.Time
	modifiedOn time.Time
	pending    []Event
}

// ID returns the aggregate's id.
func (a *Aggregate) ID() uuid.UUID { return a.id }

// Version returns the version of the last event applied.
func (a *Aggregate) Version() int64 { return a.version }

// CreatedOn returns the timestamp of the creation event.
func (a *Aggregate) CreatedOn() time.Time { return a.createdOn }

// ModifiedOn returns the timestamp of the last event applied.
func (a *Aggregate) ModifiedOn() time.Time { return a.modifiedOn }

// PendingEvents returns the events triggered since the last save, in order.
func (a *Aggregate) PendingEvents() []Event { return a.pending }

// CollectEvents returns the pending events and empties the list. Save does this
// itself after a successful write; call it only to hand events elsewhere.
func (a *Aggregate) CollectEvents() []Event {
	p := a.pending
	a.pending = nil
	return p
}

// aggregate gives the framework the embedded base of any Root. It is called
// through the Root interface only, on user types that embed Aggregate.
//
//lint:ignore U1000 used through Root by the types that embed Aggregate
func (a *Aggregate) aggregate() *Aggregate { return a }

// Root is an aggregate type: a pointer to a struct that embeds Aggregate and
// applies its events. The unexported method comes from the embedded Aggregate,
// so any type embedding it satisfies Root.
type Root interface {
	// Apply changes the aggregate's own fields for one event payload. It runs
	// when a command triggers the event and again on every replay, so it must be
	// deterministic, free of side effects, and must not fail.
	Apply(data any)
	aggregate() *Aggregate
}

// InitialVersioner is implemented by aggregate types whose creation event has
// another version than 1, such as 0 for stores with zero-based stream positions
// (EventStoreDB).
type InitialVersioner interface {
	InitialVersion() int64
}

// DefaultInitialVersion is the version of a creation event unless the aggregate
// type implements InitialVersioner.
const DefaultInitialVersion int64 = 1

// InitialVersion returns the version of root's creation event.
func InitialVersion(root Root) int64 {
	if iv, ok := root.(InitialVersioner); ok {
		return iv.InitialVersion()
	}
	return DefaultInitialVersion
}

// Now returns the current time as events record it: UTC, truncated to
// microseconds, so that a stored timestamp compares equal after a round trip.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// NewID returns a random (version 4) id, from the operating system's
// cryptographic random source as uuid.New's are, read 64 ids at a time.
func NewID() uuid.UUID { return ids.New() }

// NameID returns the deterministic (version 5) id of a name in the URL
// namespace, such as NameID("/counters/"+trick). Creating a second aggregate
// with the same id fails at save with ErrIntegrity, which makes creation
// idempotent.
func NameID(name string) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceURL, []byte(name)) }

// Create triggers the creation event of root with the given id: root gets the id,
// the type's initial version and the event's timestamp, then Apply runs with data.
// root must be new (its zero value).
func Create(root Root, id uuid.UUID, data any) {
	CreateAt(root, id, data, Now())
}

// CreateAt is Create with a given timestamp (converted to UTC and truncated to
// microseconds), for imports and tests.
func CreateAt(root Root, id uuid.UUID, data any, at time.Time) {
	e := Event{
		OriginatorID:      id,
		OriginatorVersion: InitialVersion(root),
		Timestamp:         at.UTC().Truncate(time.Microsecond),
		Data:              data,
		creation:          true,
	}
	a := root.aggregate()
	a.create(e)
	root.Apply(data)
	a.pending = append(a.pending, e)
}

// Trigger triggers an event on root: the event gets root's id, the next version
// and the current time, Apply runs at once, and the event is kept pending until
// the aggregate is saved.
func Trigger(root Root, data any) {
	TriggerAt(root, data, Now())
}

// TriggerAt is Trigger with a given timestamp.
func TriggerAt(root Root, data any, at time.Time) {
	a := root.aggregate()
	e := Event{
		OriginatorID:      a.id,
		OriginatorVersion: a.version + 1,
		Timestamp:         at.UTC().Truncate(time.Microsecond),
		Data:              data,
	}
	root.Apply(data)
	a.version, a.modifiedOn = e.OriginatorVersion, e.Timestamp
	a.pending = append(a.pending, e)
}

func (a *Aggregate) create(e Event) {
	a.id = e.OriginatorID
	a.version = e.OriginatorVersion
	a.createdOn, a.modifiedOn = e.Timestamp, e.Timestamp
	a.pending = nil
}

// Replay applies stored events to root in order, as the repository does. The
// first event creates root when root is new; every later event must belong to
// root (else ErrOriginatorID) and follow its version (else ErrOriginatorVersion).
// Replayed events are not pending.
func Replay(root Root, events ...Event) error {
	a := root.aggregate()
	for i := range events {
		if err := replay(root, a, &events[i]); err != nil {
			return err
		}
	}
	return nil
}

// replay applies one event to root, whose base is a, as Replay does.
func replay(root Root, a *Aggregate, e *Event) error {
	if a.id == uuid.Nil && a.version == 0 && a.createdOn.IsZero() {
		a.create(*e)
		root.Apply(e.Data)
		return nil
	}
	if e.OriginatorID != a.id {
		return fmt.Errorf("%w: event of %s applied to aggregate %s", ErrOriginatorID, e.OriginatorID, a.id)
	}
	if e.OriginatorVersion != a.version+1 {
		return fmt.Errorf("%w: event version %d applied to aggregate %s at version %d",
			ErrOriginatorVersion, e.OriginatorVersion, a.id, a.version)
	}
	root.Apply(e.Data)
	a.version, a.modifiedOn = e.OriginatorVersion, e.Timestamp
	return nil
}

// isNilRoot reports whether root is nil or a typed nil pointer, which Save ignores.
func isNilRoot(root Root) bool {
	if root == nil {
		return true
	}
	v := reflect.ValueOf(root)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
