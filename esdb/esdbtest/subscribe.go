package esdbtest

import (
	"context"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
