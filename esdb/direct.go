package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// Helpers for using EventStoreDB directly through the official client, for
// what the client's API lacks: the current position of a stream or of the
// database, and filtered reads of $all. Their errors keep the client's error
// as the cause (errors.As with *esdbclient.Error works).

// EventsRegex matches the types of EventStoreDB's system events ("$" first).
// It is the default exclusion of Filter.
const EventsRegex = `\$.*`

// StreamPosition returns the revision of the last event of a stream, and
// false when the stream does not exist (or was deleted), which is the case
// where an append must expect esdbclient.NoStream{} rather than a revision.
func StreamPosition(ctx context.Context, c *esdbclient.Client, stream string) (uint64, bool, error) {
	rs, err := c.ReadStream(ctx, stream, esdbclient.ReadStreamOptions{Direction: esdbclient.Backwards, From: esdbclient.End{}}, 1)
	if err != nil {
		return 0, false, fmt.Errorf("stream position of %q: %w", stream, err)
	}
	defer rs.Close()
	e, err := rs.Recv()
	switch {
	case errors.Is(err, io.EOF):
		// No event to read but no not-found either: every event has
		// expired ($maxAge, $maxCount). The stream exists; its revision
		// cannot be read back here.
		return 0, false, nil
	case code(err) == esdbclient.ErrorCodeResourceNotFound:
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("stream position of %q: %w", stream, err)
	}
	return e.OriginalEvent().EventNumber, true, nil
}

// CommitPosition returns the commit position of the last record in the
// database (system records included), or 0 for an empty database. A
// subscription from it receives only what is written later.
func CommitPosition(ctx context.Context, c *esdbclient.Client) (uint64, error) {
	rs, err := c.ReadAll(ctx, esdbclient.ReadAllOptions{Direction: esdbclient.Backwards, From: esdbclient.End{}}, 1)
	if err != nil {
		return 0, fmt.Errorf("commit position: %w", err)
	}
	defer rs.Close()
	e, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("commit position: %w", err)
	}
	return e.OriginalEvent().Position.Commit, nil
}

// Filter selects events of $all by type with regular expressions, each
// matching a whole type. Include, when not empty, keeps only the types that
// match one of its patterns (and Exclude is ignored); otherwise Exclude drops
// the types that match one of its patterns. The zero Filter excludes system
// events, as Exclude: []string{EventsRegex} does.
//
// Patterns must be RE2 syntax (no look-around), which the server's .NET
// engine reads alike. Include filters are evaluated by the server. An
// exclusion cannot be written as one RE2 pattern, so the server excludes
// system events and the remaining exclusions are applied as events arrive;
// limits always count the events that pass the whole filter.
type Filter struct {
	Include []string
	Exclude []string
}

// compiled is a Filter ready to use: what the server applies and what is
// checked on arrival.
type compiled struct {
	server  *esdbclient.SubscriptionFilter
	include *regexp.Regexp // nil: none
	exclude *regexp.Regexp // nil: none
}

func anchored(patterns []string) string {
	parts := make([]string, len(patterns))
	for i, p := range patterns {
		parts[i] = "(?:" + p + ")"
	}
	return "^(?:" + strings.Join(parts, "|") + ")$"
}

func (f Filter) compile() (compiled, error) {
	if len(f.Include) > 0 {
		src := anchored(f.Include)
		re, err := regexp.Compile(src)
		if err != nil {
			return compiled{}, fmt.Errorf("include filter %q: %w", f.Include, err)
		}
		return compiled{server: &esdbclient.SubscriptionFilter{Type: esdbclient.EventFilterType, Regex: src}, include: re}, nil
	}
	exclude := f.Exclude
	if exclude == nil {
		exclude = []string{EventsRegex}
	}
	c := compiled{}
	if len(exclude) > 0 {
		re, err := regexp.Compile(anchored(exclude))
		if err != nil {
			return compiled{}, fmt.Errorf("exclude filter %q: %w", exclude, err)
		}
		c.exclude = re
		// When system events are excluded, the server can do that much.
		if re.MatchString("$any") && re.MatchString("$") {
			c.server = esdbclient.ExcludeSystemEventsFilter()
		}
	}
	return c, nil
}

func (c compiled) keep(eventType string) bool {
	if c.include != nil {
		return c.include.MatchString(eventType)
	}
	return c.exclude == nil || !c.exclude.MatchString(eventType)
}

// ReadAllOptions are the options of ReadAll.
type ReadAllOptions struct {
	// From is the commit position to start at; nil means the start (or the
	// end, backwards). Forwards, the event at From is included; backwards,
	// it is not (as in EventStoreDB). It must be 0 or an event's position.
	From *uint64
	// Backwards reads from the end towards the start.
	Backwards bool
	// Limit is the maximum number of events returned, counted after
	// filtering; 0 means no limit.
	Limit int
	// Filter selects event types; the zero value excludes system events.
	Filter Filter
}

// ReadAll reads recorded events of $all with a type filter applied before
// the limit. The client's ReadAll has no filter, so forwards reads run on a
// filtered catch-up subscription that stops when it has caught up (or
// reached the limit); backwards reads, which subscriptions cannot do, page
// through $all and filter as they go.
func ReadAll(ctx context.Context, c *esdbclient.Client, opts ReadAllOptions) ([]*esdbclient.RecordedEvent, error) {
	f, err := opts.Filter.compile()
	if err != nil {
		return nil, fmt.Errorf("read $all: %w", err)
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("read $all: negative limit %d", opts.Limit)
	}
	if opts.Backwards {
		return readAllBackwards(ctx, c, opts, f)
	}
	return readAllForwards(ctx, c, opts, f)
}

func readAllBackwards(ctx context.Context, c *esdbclient.Client, opts ReadAllOptions, f compiled) ([]*esdbclient.RecordedEvent, error) {
	var from esdbclient.AllPosition = esdbclient.End{}
	if opts.From != nil {
		from = esdbclient.Position{Commit: *opts.From, Prepare: *opts.From}
	}
	const page = 256
	var out []*esdbclient.RecordedEvent
	for {
		rs, err := c.ReadAll(ctx, esdbclient.ReadAllOptions{Direction: esdbclient.Backwards, From: from}, page)
		if err != nil {
			return nil, fmt.Errorf("read $all backwards: %w", err)
		}
		n := 0
		for {
			e, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return nil, fmt.Errorf("read $all backwards: %w", err)
			}
			n++
			ev := e.OriginalEvent()
			from = ev.Position
			if f.keep(ev.EventType) {
				out = append(out, ev)
				if opts.Limit > 0 && len(out) == opts.Limit {
					rs.Close()
					return out, nil
				}
			}
		}
		rs.Close()
		if n < page {
			return out, nil
		}
	}
}

func readAllForwards(ctx context.Context, c *esdbclient.Client, opts ReadAllOptions, f compiled) ([]*esdbclient.RecordedEvent, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out []*esdbclient.RecordedEvent
	full := func() bool { return opts.Limit > 0 && len(out) >= opts.Limit }
	var after *uint64
	if opts.From != nil && *opts.From > 0 {
		// Subscriptions start after their position, reads at it: read the
		// event at From first.
		p := *opts.From
		rs, err := c.ReadAll(ctx, esdbclient.ReadAllOptions{From: esdbclient.Position{Commit: p, Prepare: p}}, 1)
		if err != nil {
			return nil, fmt.Errorf("read $all from %d: %w", p, err)
		}
		e, err := rs.Recv()
		rs.Close()
		switch {
		case errors.Is(err, io.EOF):
			return out, nil // From is the end of $all
		case err != nil:
			return nil, fmt.Errorf("read $all from %d: %w", p, err)
		}
		if ev := e.OriginalEvent(); ev.Position.Commit == p && f.keep(ev.EventType) {
			out = append(out, ev)
		}
		after = &p
	}
	if full() {
		return out, nil
	}
	// Where history ends, for servers that do not send caught-up (before 23.10).
	head, err := CommitPosition(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("read $all: %w", err)
	}
	if after != nil && *after >= head {
		return out, nil
	}
	if after == nil && head == 0 {
		return out, nil
	}
	sub, err := c.SubscribeToAll(ctx, subscribeOptions(after, f.server))
	if err != nil {
		return nil, fmt.Errorf("read $all: subscribe: %w", err)
	}
	defer sub.Close()
	for {
		ev := sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("read $all: subscription dropped: %w", ev.SubscriptionDropped.Error)
		case ev.CaughtUp != nil:
			return out, nil
		case ev.CheckPointReached != nil:
			if ev.CheckPointReached.Commit >= head {
				return out, nil
			}
		case ev.EventAppeared != nil:
			e := ev.EventAppeared.OriginalEvent()
			if e.Position.Commit > head {
				return out, nil // written after the read began
			}
			if f.keep(e.EventType) {
				out = append(out, e)
				if full() {
					return out, nil
				}
			}
			if e.Position.Commit == head {
				return out, nil
			}
		}
	}
}

// AllSubscription is a catch-up subscription to $all with a Filter.
type AllSubscription struct {
	sub *esdbclient.Subscription
	f   compiled
}

// SubscribeAll opens a catch-up subscription to $all after the commit
// position after (from the start when nil), delivering the events that pass
// filter (the zero Filter excludes system events).
func SubscribeAll(ctx context.Context, c *esdbclient.Client, after *uint64, filter Filter) (*AllSubscription, error) {
	f, err := filter.compile()
	if err != nil {
		return nil, fmt.Errorf("subscribe to $all: %w", err)
	}
	sub, err := c.SubscribeToAll(ctx, subscribeOptions(after, f.server))
	if err != nil {
		return nil, fmt.Errorf("subscribe to $all: %w", err)
	}
	return &AllSubscription{sub: sub, f: f}, nil
}

// Recv returns the next event that passes the filter, blocking until one is
// written. It fails when the subscription drops (or is closed); resume with
// a new subscription after the last position processed.
func (s *AllSubscription) Recv() (*esdbclient.RecordedEvent, error) {
	for {
		ev := s.sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			return nil, fmt.Errorf("subscription to $all dropped: %w", ev.SubscriptionDropped.Error)
		case ev.EventAppeared != nil:
			if e := ev.EventAppeared.OriginalEvent(); s.f.keep(e.EventType) {
				return e, nil
			}
		}
	}
}

// Close ends the subscription.
func (s *AllSubscription) Close() error { return s.sub.Close() }
