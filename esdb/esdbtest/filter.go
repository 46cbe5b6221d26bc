package esdbtest

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/dlclark/regexp2/v2"
)

// defaultWindow is the checkpoint window a real node uses for a filter
// sent with a "count" window.
const defaultWindow = 32

// filterMatchTimeout bounds one evaluation of a filter regex. The server
// evaluates filters with .NET regexes, which backtrack: a pathological
// pattern could otherwise hold a read or subscription forever. A match
// that times out counts as no match and is logged.
const filterMatchTimeout = 100 * time.Millisecond

// filter selects $all records by event type or stream name, as a real
// node does: with a regex when one is given (a .NET regex, searched for
// anywhere in the name), otherwise by prefixes.
type filter struct {
	onStream bool
	re       *regexp2.Regexp
	prefixes []string
	interval uint64 // records considered between checkpoints

	log      *slog.Logger
	timedOut atomic.Bool // a match has timed out (logged once)

	// seen caches the regex's verdict per name (string → bool): event
	// types, and often stream names, repeat, and a cached verdict costs a
	// map lookup instead of a backtracking match. At most maxSeen names
	// are kept; the rest are matched every time.
	seen  sync.Map
	nSeen atomic.Int32
}

// maxSeen bounds the verdicts a filter caches.
const maxSeen = 4096

// invalidFilterError is a filter regex the .NET engine rejects. A real
// node fails the call with an unhandled exception, which gRPC reports as
// Unknown.
type invalidFilterError struct {
	pattern string
	err     error
}

func (e *invalidFilterError) Error() string {
	return fmt.Sprintf("invalid filter regex %q: %v", e.pattern, e.err)
}

func (e *invalidFilterError) Unwrap() error { return e.err }

// expression is what both the streams and persistent filter expressions
// look like.
type expression interface {
	GetRegex() string
	GetPrefix() []string
}

func newFilter(log *slog.Logger, onStream bool, e expression, window uint32, hasMax bool, mult uint32) (*filter, error) {
	f := &filter{onStream: onStream, log: log}
	if rx := e.GetRegex(); rx != "" {
		re, err := regexp2.Compile(rx)
		if err != nil {
			return nil, &invalidFilterError{pattern: rx, err: err}
		}
		re.MatchTimeout = filterMatchTimeout
		f.re = re
	} else {
		f.prefixes = e.GetPrefix()
	}
	w := uint64(defaultWindow)
	if hasMax && window > 0 {
		w = uint64(window)
	}
	m := uint64(mult)
	if m == 0 {
		m = 1
	}
	f.interval = w * m
	return f, nil
}

func (s *Server) compileFilter(fo *streams.ReadReq_Options_FilterOptions) (*filter, error) {
	if fo == nil {
		return nil, nil
	}
	_, hasMax := fo.Window.(*streams.ReadReq_Options_FilterOptions_Max)
	switch e := fo.Filter.(type) {
	case *streams.ReadReq_Options_FilterOptions_StreamIdentifier:
		return newFilter(s.log, true, e.StreamIdentifier, fo.GetMax(), hasMax, fo.CheckpointIntervalMultiplier)
	case *streams.ReadReq_Options_FilterOptions_EventType:
		return newFilter(s.log, false, e.EventType, fo.GetMax(), hasMax, fo.CheckpointIntervalMultiplier)
	default:
		return nil, errors.New("a filter needs a stream or event type expression")
	}
}

// match reports whether the filter lets r through. As on a real node,
// the records of $all that are never delivered to a filtered reader (the
// epoch records and the checkpoints and parked messages of $all groups)
// are excluded first.
func (f *filter) match(r *record) bool {
	if hiddenFromAll(r.Stream) {
		return false
	}
	s := r.Type
	if f.onStream {
		s = r.Stream
	}
	if f.re == nil {
		for _, p := range f.prefixes {
			if strings.HasPrefix(s, p) {
				return true
			}
		}
		return false
	}
	if v, ok := f.seen.Load(s); ok {
		return v.(bool)
	}
	ok, err := f.re.MatchString(s)
	if err != nil {
		if !f.timedOut.Swap(true) {
			f.log.Warn("esdbtest: filter regex gave up, counting as no match",
				"pattern", f.re.String(), "subject", s, "err", err)
		}
		return false // not cached: a less loaded machine may finish it
	}
	if f.nSeen.Load() < maxSeen {
		if _, loaded := f.seen.LoadOrStore(s, ok); !loaded {
			f.nSeen.Add(1)
		}
	}
	return ok
}

// hiddenFromAll reports whether a filtered read of $all skips the stream.
func hiddenFromAll(stream string) bool {
	if stream == "" || stream[0] != '$' {
		return false
	}
	if stream == "$epoch-information" {
		return true
	}
	rest, ok := strings.CutPrefix(stream, "$persistentsubscription-$all::")
	return ok && (strings.HasSuffix(rest, "-checkpoint") || strings.HasSuffix(rest, "-parked"))
}
