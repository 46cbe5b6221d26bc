package follow

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// State is where a follower is in its life.
type State int32

// The states of a follower.
const (
	// Idle: not started, or between the single-threaded runner's pulls.
	Idle State = iota
	// CatchingUp: reading pages, behind the upstream's head.
	CatchingUp
	// Live: caught up, one subscription open.
	Live
	// BackingOff: the infrastructure failed; a retry is scheduled.
	BackingOff
	// Failed: a handler error or an undecodable event stopped it.
	Failed
	// Stopped: its context ended.
	Stopped
)

var stateNames = [...]string{"idle", "catching up", "live", "backing off", "failed", "stopped"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// ParseState is the inverse of State.String.
func ParseState(s string) (State, bool) {
	i := slices.Index(stateNames[:], s)
	return State(i), i >= 0
}

// Unit is what a lag is counted in.
type Unit string

// Units of lag: events where ids count them, positions where they do not
// (EventStoreDB's commit positions).
const (
	Events    Unit = "events"
	Positions Unit = "positions"
)

// Status is a follower's progress.
type Status struct {
	// Follower and Upstream name the follower and what it follows.
	Follower, Upstream string
	State              State
	// Position is the last position recorded; HasPosition is false before
	// the first.
	Position    int64
	HasPosition bool
	// Head is the upstream's last notification id, as last read.
	Head    int64
	HasHead bool
	// Lag is Head - Position (never negative), in LagUnit.
	Lag     int64
	LagUnit Unit
	// Rate is the processing rate, in events per second, since the
	// previous Status call (or the start).
	Rate float64
	// Processed counts the events handed to the handler since the start.
	Processed uint64
	// Subscriptions counts the live subscriptions opened since the start.
	Subscriptions int64
	// Err is the error the follower failed with (Failed), or is retrying
	// after (BackingOff).
	Err error
	// DeadLetters are the events skipped (SkipFailed), the last 100.
	DeadLetters []DeadLetter
}

// String is one line with the words upstream, state, position, head and lag.
func (s Status) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s upstream %s state %q position %s head %s lag %d %s rate %.0f/s processed %d subscriptions %d",
		s.Follower, s.Upstream, s.State.String(), optional(s.Position, s.HasPosition), optional(s.Head, s.HasHead),
		s.Lag, s.LagUnit, s.Rate, s.Processed, s.Subscriptions)
	if len(s.DeadLetters) > 0 {
		fmt.Fprintf(&b, " dead-letters %d", len(s.DeadLetters))
	}
	if s.Err != nil {
		fmt.Fprintf(&b, " error %q", s.Err.Error())
	}
	return b.String()
}

func optional(v int64, ok bool) string {
	if !ok {
		return "none"
	}
	return fmt.Sprint(v)
}

// State returns the follower's state.
func (f *Follower) State() State { return State(f.state.Load()) }

// Err returns the error the follower failed with, or nil.
func (f *Follower) Err() error {
	if f.State() != Failed {
		return nil
	}
	f.smu.Lock()
	defer f.smu.Unlock()
	return f.lastErr
}

// statusHeadTimeout bounds Status's read of the upstream's head, so that a
// status report answers at once while the upstream is down or unreachable
// (a remote source retries for longer than a status call waits), with the
// last head read.
const statusHeadTimeout = time.Second

// Status reports the follower's progress. It reads the upstream's head with
// ctx, for at most statusHeadTimeout (falling back on the last head read
// when that fails).
func (f *Follower) Status(ctx context.Context) Status { return f.status(ctx, true) }

// status is Status; rate says whether to take the rate since the previous
// call (the meter's readings do not, so that they leave it to Status's callers).
func (f *Follower) status(ctx context.Context, rate bool) Status {
	hctx, cancel := context.WithTimeout(ctx, statusHeadTimeout)
	head, ok, err := f.cfg.Source.MaxNotificationID(hctx)
	cancel()
	if err == nil {
		f.setHead(head, ok)
	}
	st := f.State()
	now := time.Now()
	processed := f.processed.Load()
	f.smu.Lock()
	defer f.smu.Unlock()
	if rate {
		if !f.rateAt.IsZero() {
			if dt := now.Sub(f.rateAt).Seconds(); dt > 0 {
				f.rate = float64(processed-f.rateCount) / dt
			}
		}
		f.rateAt, f.rateCount = now, processed
	}
	s := Status{
		Follower: f.cfg.Name, Upstream: f.cfg.Upstream, State: st,
		Position: f.statusPos, HasPosition: f.statusHas, Head: f.head, HasHead: f.hasHead,
		LagUnit: Events, Rate: f.rate, Processed: processed, Subscriptions: f.subs.Load(),
		DeadLetters: slices.Clone(f.dead),
	}
	if sp, ok := f.cfg.Source.(sparseIDs); ok && sp.SparseNotificationIDs() {
		s.LagUnit = Positions
	}
	if s.HasHead {
		s.Lag = max(s.Head-s.Position, 0)
		if !s.HasPosition {
			s.Lag = s.Head
		}
	}
	if st == Failed || st == BackingOff {
		s.Err = f.lastErr
	}
	return s
}
