package esdbtest

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// defaultWindow is the checkpoint window a real node uses for a filter
// sent with a "count" window.
const defaultWindow = 32

// filter selects $all records by event type or stream name.
type filter struct {
	onStream bool
	re       *regexp.Regexp
	prefixes []string
	interval uint64 // records considered between checkpoints
}

// expression is what both the streams and persistent filter expressions
// look like.
type expression interface {
	GetRegex() string
	GetPrefix() []string
}

func newFilter(onStream bool, e expression, window uint32, hasMax bool, mult uint32) (*filter, error) {
	f := &filter{onStream: onStream, prefixes: e.GetPrefix()}
	if rx := e.GetRegex(); rx != "" {
		// Clients send .NET patterns; the RE2 subset is what both agree on.
		re, err := regexp.Compile(rx)
		if err != nil {
			return nil, fmt.Errorf("invalid filter regex %q: %w", rx, err)
		}
		f.re = re
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

func compileFilter(fo *streams.ReadReq_Options_FilterOptions) (*filter, error) {
	if fo == nil {
		return nil, nil
	}
	_, hasMax := fo.Window.(*streams.ReadReq_Options_FilterOptions_Max)
	switch e := fo.Filter.(type) {
	case *streams.ReadReq_Options_FilterOptions_StreamIdentifier:
		return newFilter(true, e.StreamIdentifier, fo.GetMax(), hasMax, fo.CheckpointIntervalMultiplier)
	case *streams.ReadReq_Options_FilterOptions_EventType:
		return newFilter(false, e.EventType, fo.GetMax(), hasMax, fo.CheckpointIntervalMultiplier)
	default:
		return nil, fmt.Errorf("a filter needs a stream or event type expression")
	}
}

func (f *filter) match(r *record) bool {
	s := r.Type
	if f.onStream {
		s = r.Stream
	}
	if f.re != nil && f.re.MatchString(s) {
		return true
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func confirmation() *streams.ReadResp {
	return &streams.ReadResp{Content: &streams.ReadResp_Confirmation{Confirmation: &streams.ReadResp_SubscriptionConfirmation{
		SubscriptionId: uuid.NewString()}}}
}

func caughtUp() *streams.ReadResp {
	return &streams.ReadResp{Content: &streams.ReadResp_CaughtUp_{CaughtUp: &streams.ReadResp_CaughtUp{}}}
}

func checkpoint(pos uint64) *streams.ReadResp {
	return &streams.ReadResp{Content: &streams.ReadResp_Checkpoint_{Checkpoint: &streams.ReadResp_Checkpoint{
		CommitPosition: pos, PreparePosition: pos}}}
}

// wait blocks until the log grows past what the subscriber has seen, the
// client goes away or the server closes.
func (s *Server) wait(ctx context.Context, notify <-chan struct{}) error {
	select {
	case <-notify:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-s.ctx.Done():
		return status.Error(codes.Unavailable, "server is shutting down")
	}
}

func (ss *streamsServer) subscribeStream(stream streams.Streams_ReadServer, name string, o *streams.ReadReq_Options_StreamOptions, asString bool) error {
	srv := ss.srv
	ctx := stream.Context()
	v := srv.store.streamSnap(name)
	var cursor int
	fromEnd := false
	switch {
	case o.GetStart() != nil:
	case o.GetEnd() != nil:
		cursor = len(v.revs)
		fromEnd = true
	default:
		// A revision start is exclusive; a revision beyond the end waits
		// for the stream to grow past it.
		cursor = int(min(o.GetRevision(), 1<<62)) + 1
	}
	if err := stream.Send(confirmation()); err != nil {
		return err
	}
	live := false
	for {
		for cursor < len(v.revs) {
			if err := sendEvent(stream, v.log[v.revs[cursor]], asString); err != nil {
				return err
			}
			cursor++
		}
		if v.tombstone >= 0 {
			if !fromEnd || live {
				if err := sendEvent(stream, v.log[v.tombstone], asString); err != nil {
					return err
				}
			}
			return storeErr(stream.SetTrailer, &streamDeletedError{stream: name})
		}
		next := srv.store.streamSnap(name)
		if len(next.revs) > len(v.revs) || next.tombstone >= 0 {
			v = next
			continue
		}
		if !live {
			live = true
			if err := stream.Send(caughtUp()); err != nil {
				return err
			}
		}
		if err := srv.wait(ctx, next.notify); err != nil {
			return err
		}
		v = srv.store.streamSnap(name)
	}
}

func (ss *streamsServer) subscribeAll(stream streams.Streams_ReadServer, o *streams.ReadReq_Options_AllOptions, f *filter, _ *streams.ReadReq_Options_FilterOptions, asString bool) error {
	srv := ss.srv
	ctx := stream.Context()
	sn := srv.store.snap()
	var cursor int
	var invalid error
	switch {
	case o.GetStart() != nil:
	case o.GetEnd() != nil:
		cursor = len(sn.log)
	default:
		p := o.GetPosition().GetCommitPosition()
		i, exact := seek(sn.log, p)
		switch {
		case exact:
			cursor = i + 1 // a position start is exclusive
		case p == 0 || i == len(sn.log):
			cursor = i
		default:
			invalid = status.Error(codes.InvalidArgument, fmt.Sprintf("Invalid position %d/%d.", p, o.GetPosition().GetPreparePosition()))
		}
	}
	if err := stream.Send(confirmation()); err != nil {
		return err
	}
	if invalid != nil {
		return invalid
	}
	var considered, lastPos, lastCheckpoint uint64
	live := false
	for {
		for ; cursor < len(sn.log); cursor++ {
			r := sn.log[cursor]
			if f == nil || f.match(r) {
				if err := sendEvent(stream, r, asString); err != nil {
					return err
				}
			}
			if f == nil {
				continue
			}
			considered++
			lastPos = r.Pos
			if considered%f.interval == 0 {
				lastCheckpoint = lastPos
				if err := stream.Send(checkpoint(lastPos)); err != nil {
					return err
				}
			}
		}
		next := srv.store.snap()
		if len(next.log) > len(sn.log) {
			sn = next
			continue
		}
		if !live {
			live = true
			// The end of history is a checkpoint too, at the last record
			// considered and never past it.
			if f != nil && lastPos > lastCheckpoint {
				lastCheckpoint = lastPos
				if err := stream.Send(checkpoint(lastPos)); err != nil {
					return err
				}
			}
			if err := stream.Send(caughtUp()); err != nil {
				return err
			}
		}
		if err := srv.wait(ctx, next.notify); err != nil {
			return err
		}
		sn = srv.store.snap()
	}
}
