package esdbtest

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Every call is logged at debug level when it ends, with its method, the
// stream it names, its status code and how long it took, so that a
// failing client test can be read off the server's log. With a logger
// that discards debug records, calls are not inspected at all.

// errDeadlineExceeded is the answer to a call that arrives with its
// deadline already past: a real node never runs it.
var errDeadlineExceeded = status.Error(codes.DeadlineExceeded, "Deadline Exceeded")

// expired reports whether the call's deadline has passed.
func expired(ctx context.Context) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

func (s *Server) unaryCall(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if expired(ctx) {
		return nil, errDeadlineExceeded
	}
	if !s.log.Enabled(ctx, slog.LevelDebug) {
		return h(ctx, req)
	}
	start := time.Now()
	note := &callNote{}
	resp, err := h(context.WithValue(ctx, callNoteKey{}, note), req)
	s.logEnd(ctx, info.FullMethod, callStream(req), note.outcome, start, err)
	return resp, err
}

func (s *Server) streamCall(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx := ss.Context()
	if expired(ctx) {
		return errDeadlineExceeded
	}
	if !s.log.Enabled(ctx, slog.LevelDebug) {
		return h(srv, ss)
	}
	start := time.Now()
	ls := &loggedStream{ServerStream: ss, note: &callNote{}}
	ls.ctx = context.WithValue(ctx, callNoteKey{}, ls.note)
	err := h(srv, ls)
	s.logEnd(ctx, info.FullMethod, ls.stream, ls.note.outcome, start, err)
	return err
}

// callNote carries what a handler reports of a call that succeeds at the
// gRPC level but not for the client (an append's wrong expected version).
type callNote struct{ outcome string }

type callNoteKey struct{}

// noteOutcome records the outcome of the call for its log line.
func noteOutcome(ctx context.Context, outcome string) {
	if n, ok := ctx.Value(callNoteKey{}).(*callNote); ok {
		n.outcome = outcome
	}
}

func (s *Server) logEnd(ctx context.Context, method, stream, outcome string, start time.Time, err error) {
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("result", status.Code(err).String()),
		slog.Duration("took", time.Since(start)),
	}
	if stream != "" {
		attrs = append(attrs, slog.String("stream", stream))
	}
	if outcome != "" {
		attrs = append(attrs, slog.String("outcome", outcome))
	}
	if err != nil {
		attrs = append(attrs, slog.String("err", status.Convert(err).Message()))
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "esdbtest: call", attrs...)
}

// loggedStream remembers the stream named by the first message of a
// streaming call.
type loggedStream struct {
	grpc.ServerStream
	ctx    context.Context
	note   *callNote
	stream string
	seen   bool
}

func (l *loggedStream) Context() context.Context { return l.ctx }

func (l *loggedStream) RecvMsg(m any) error {
	err := l.ServerStream.RecvMsg(m)
	if err == nil && !l.seen {
		l.seen = true
		l.stream = callStream(m)
	}
	return err
}

// callStream is the stream a request names, "$all" for $all, or "".
func callStream(req any) string {
	name := func(all bool, id *shared.StreamIdentifier) string {
		if all {
			return "$all"
		}
		return string(id.GetStreamName())
	}
	switch r := req.(type) {
	case *appendFrame:
		return r.stream
	case *streams.ReadReq:
		o := r.GetOptions()
		return name(o.GetAll() != nil, o.GetStream().GetStreamIdentifier())
	case *streams.DeleteReq:
		return name(false, r.GetOptions().GetStreamIdentifier())
	case *streams.TombstoneReq:
		return name(false, r.GetOptions().GetStreamIdentifier())
	case *persistent.ReadReq:
		o := r.GetOptions()
		return name(o.GetAll() != nil, o.GetStreamIdentifier())
	case *persistent.CreateReq:
		o := r.GetOptions()
		return name(o.GetAll() != nil, groupStream(o.GetStream(), o))
	case *persistent.UpdateReq:
		o := r.GetOptions()
		return name(o.GetAll() != nil, groupStream(o.GetStream(), o))
	case *persistent.DeleteReq:
		o := r.GetOptions()
		return name(o.GetAll() != nil, o.GetStreamIdentifier())
	case *persistent.GetInfoReq:
		o := r.GetOptions()
		return name(o.GetAll() != nil, o.GetStreamIdentifier())
	case *persistent.ReplayParkedReq:
		o := r.GetOptions()
		return name(o.GetAll() != nil, o.GetStreamIdentifier())
	}
	return ""
}

type identified interface {
	GetStreamIdentifier() *shared.StreamIdentifier
}

// groupStream is the stream of a group's create or update options, which
// older clients send in a deprecated field.
func groupStream(current, deprecated identified) *shared.StreamIdentifier {
	if id := current.GetStreamIdentifier(); id != nil {
		return id
	}
	return deprecated.GetStreamIdentifier()
}

// logWrite logs one write of a batch append, which names its own stream.
func (s *Server) logWrite(r *streams.BatchAppendResp) {
	if !s.log.Enabled(s.ctx, slog.LevelDebug) {
		return
	}
	result := "Success"
	if e := r.GetError(); e != nil {
		result = e.GetMessage()
	}
	s.log.LogAttrs(s.ctx, slog.LevelDebug, "esdbtest: batch append write",
		slog.String("stream", string(r.GetStreamIdentifier().GetStreamName())),
		slog.String("result", result))
}
