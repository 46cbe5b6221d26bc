package recorder

import "strconv"

// Position is a place in an application's notification log, between two
// notifications: before the first notification (the zero value, Start) or
// just after the notification with a given id (After). Subscriptions and
// followers resume from a Position; a NotificationQuery selects after one.
type Position struct {
	id    int64
	after bool
}

// Start returns the position before the first notification, the zero Position.
func Start() Position { return Position{} }

// After returns the position just after the notification with the given id:
// what follows it starts with the first notification whose id is greater.
func After(id int64) Position { return Position{id: id, after: true} }

// ID returns the id of the notification the position is after, and false at
// Start.
func (p Position) ID() (int64, bool) { return p.id, p.after }

// String returns "start" or "after N".
func (p Position) String() string {
	if !p.after {
		return "start"
	}
	return "after " + strconv.FormatInt(p.id, 10)
}

// Bound is an optional bound on an event's version (EventQuery) or a
// notification's id (NotificationQuery.Stop). The zero value is no bound;
// Bounded(0) is a bound at 0, a real version on EventStoreDB, whose
// aggregates start at version 0.
type Bound struct {
	n   int64
	set bool
}

// Bounded returns the bound at n.
func Bounded(n int64) Bound { return Bound{n: n, set: true} }

// Value returns the bound, and false when there is none.
func (b Bound) Value() (int64, bool) { return b.n, b.set }

// String returns the bound's value, or "none".
func (b Bound) String() string {
	if !b.set {
		return "none"
	}
	return strconv.FormatInt(b.n, 10)
}
