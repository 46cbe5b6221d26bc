package esdbtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

type streamsServer struct {
	streams.UnimplementedStreamsServer
	srv *Server
}

// --- conversions ---

func toProtoUUID(id uuid.UUID, asString bool) *shared.UUID {
	if asString {
		return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(id[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(id[8:])),
	}}}
}

func fromProtoUUID(u *shared.UUID) (uuid.UUID, error) {
	if s := u.GetStructured(); s != nil {
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], uint64(s.MostSignificantBits))
		binary.BigEndian.PutUint64(id[8:], uint64(s.LeastSignificantBits))
		return id, nil
	}
	if str := u.GetString_(); str != "" {
		id, err := uuid.Parse(str)
		if err != nil {
			return uuid.Nil, fmt.Errorf("parse event id: %w", err)
		}
		return id, nil
	}
	return uuid.Nil, errors.New("missing event id")
}

func streamID(name string) *shared.StreamIdentifier {
	return &shared.StreamIdentifier{StreamName: []byte(name)}
}

// systemMetadata is the metadata map every recorded event carries; the
// client aborts the process (log.Fatalf) when "created" is not an integer.
func systemMetadata(r *record) map[string]string {
	return map[string]string{
		"type":         r.Type,
		"content-type": r.ContentType,
		"created":      strconv.FormatInt(r.Created, 10),
	}
}

func toRecordedEvent(r *record, asString bool) *streams.ReadResp_ReadEvent_RecordedEvent {
	return &streams.ReadResp_ReadEvent_RecordedEvent{
		Id:               toProtoUUID(r.ID, asString),
		StreamIdentifier: streamID(r.Stream),
		StreamRevision:   r.Revision,
		PreparePosition:  r.Pos,
		CommitPosition:   r.Pos,
		Metadata:         systemMetadata(r),
		CustomMetadata:   r.Meta,
		Data:             r.Data,
	}
}

func eventResp(r *record, asString bool) *streams.ReadResp {
	return &streams.ReadResp{Content: &streams.ReadResp_Event{Event: &streams.ReadResp_ReadEvent{
		Event:    toRecordedEvent(r, asString),
		Position: &streams.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.Pos},
	}}}
}

// --- errors ---

// trailerErr sets the "exception" trailers a real node sends and returns
// the status error. setTrailer is grpc.SetTrailer or a stream's SetTrailer.
func trailerErr(setTrailer func(metadata.MD), code codes.Code, msg string, kv ...string) error {
	setTrailer(metadata.Pairs(kv...))
	return status.Error(code, msg)
}

func unaryTrailer(ctx context.Context) func(metadata.MD) {
	return func(md metadata.MD) { _ = grpc.SetTrailer(ctx, md) }
}

// storeErr maps store errors to what a real node answers. The client
// indexes the stream-name trailer of stream-deleted without a check, so it
// must always be present.
func storeErr(setTrailer func(metadata.MD), err error) error {
	var del *streamDeletedError
	var wev *wrongVersionError
	switch {
	case errors.As(err, &del):
		return trailerErr(setTrailer, codes.FailedPrecondition,
			fmt.Sprintf("Event stream '%s' is deleted.", del.stream),
			"exception", "stream-deleted", "stream-name", del.stream)
	case errors.As(err, &wev):
		return trailerErr(setTrailer, codes.FailedPrecondition,
			fmt.Sprintf("Append failed due to WrongExpectedVersion. Stream: %s, Expected version: %s, Actual version: %d",
				wev.stream, expectedString(wev.expected), wev.actual),
			"exception", "wrong-expected-version", "stream-name", wev.stream,
			"expected-version", expectedString(wev.expected), "actual-version", strconv.FormatInt(wev.actual, 10))
	default:
		return status.Error(codes.Unavailable, err.Error())
	}
}

// expectedString renders an expectation as the real node's numeric codes.
func expectedString(e expectation) string {
	switch e.kind {
	case expectAny:
		return "-2"
	case expectNoStream:
		return "-1"
	case expectExists:
		return "-4"
	default:
		return strconv.FormatUint(e.rev, 10)
	}
}

// filterErr answers a filter that cannot be used: a regex the .NET engine
// rejects fails the call as an exception in the server's handler does.
func (s *Server) filterErr(setTrailer func(metadata.MD), err error) error {
	var inv *invalidFilterError
	if errors.As(err, &inv) {
		s.log.Debug("esdbtest: refusing filter", "err", err)
		return status.Error(codes.Unknown, "Exception was thrown by handler.")
	}
	return badRequest(setTrailer, err.Error())
}

func badRequest(setTrailer func(metadata.MD), msg string) error {
	return trailerErr(setTrailer, codes.InvalidArgument, msg, "exception", "bad-request")
}

// --- append ---

type expectedOption interface {
	GetRevision() uint64
	GetNoStream() *shared.Empty
	GetAny() *shared.Empty
	GetStreamExists() *shared.Empty
}

func toExpectation(o expectedOption) expectation {
	switch {
	case o.GetNoStream() != nil:
		return expectation{kind: expectNoStream}
	case o.GetAny() != nil:
		return expectation{kind: expectAny}
	case o.GetStreamExists() != nil:
		return expectation{kind: expectExists}
	default:
		return expectation{kind: expectRevision, rev: o.GetRevision()}
	}
}

func (ss *streamsServer) Append(stream streams.Streams_AppendServer) error {
	var f appendFrame
	if err := stream.RecvMsg(&f); err != nil {
		return err
	}
	hasOptions, name, exp := f.hasOptions, f.stream, f.exp
	setTrailer := stream.SetTrailer
	var (
		size    int
		problem error
	)
	events := getProposed()
	defer putProposed(events)
	if !hasOptions || name == "" {
		problem = badRequest(setTrailer, "append options with a stream name are required first")
	}
	// Read everything the client sends before answering: an early answer
	// turns into EOF on the client's Send instead of the real status.
	for {
		err := stream.RecvMsg(&f)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if !f.hasEvent || problem != nil {
			continue
		}
		e := &f.event
		if !f.hasType || !f.hasCT {
			prop := "type"
			if f.hasType {
				prop = "content-type"
			}
			problem = trailerErr(setTrailer, codes.InvalidArgument,
				fmt.Sprintf("Required Metadata Property '%s' is missing", prop),
				"exception", "missing-required-metadata-property", "required-properties", "type,content-type")
			continue
		}
		if !f.hasID {
			problem = badRequest(setTrailer, "missing event id")
			continue
		}
		size += sizeOnDisk(e)
		*events = append(*events, *e)
	}
	if problem != nil {
		return problem
	}
	if size > maxAppendSize {
		return trailerErr(setTrailer, codes.InvalidArgument,
			fmt.Sprintf("Maximum Append Size of %d Exceeded.", maxAppendSize),
			"exception", "maximum-append-size-exceeded", "maximum-append-size", strconv.Itoa(maxAppendSize))
	}
	res, err := ss.srv.store.append(name, exp, *events)
	if err != nil {
		return storeErr(setTrailer, err)
	}
	if res.wrong {
		noteOutcome(stream.Context(), "WrongExpectedVersion")
	}
	if res.wrong {
		return stream.SendAndClose(appendResp(res))
	}
	return stream.SendMsg(successResp(res))
}

// successResp is the wire form of appendResp(res) for a success, encoded
// by hand: the generic encoder's objects and reflection were a large part
// of the emulator's own cost of a one-event append.
func successResp(res writeResult) rawMessage {
	var inner [40]byte
	b := inner[:0]
	if res.noStream {
		b = protowire.AppendTag(b, 2, protowire.BytesType) // no_stream: Empty
		b = protowire.AppendVarint(b, 0)
	} else {
		b = protowire.AppendTag(b, 1, protowire.VarintType) // current_revision
		b = protowire.AppendVarint(b, res.revision)
	}
	if res.hasPos {
		var pos [24]byte
		p := pos[:0]
		if res.pos != 0 {
			p = protowire.AppendTag(p, 1, protowire.VarintType) // commit_position
			p = protowire.AppendVarint(p, res.pos)
			p = protowire.AppendTag(p, 2, protowire.VarintType) // prepare_position
			p = protowire.AppendVarint(p, res.pos)
		}
		b = protowire.AppendTag(b, 3, protowire.BytesType) // position
		b = protowire.AppendBytes(b, p)
	} else {
		b = protowire.AppendTag(b, 4, protowire.BytesType) // no_position: Empty
		b = protowire.AppendVarint(b, 0)
	}
	out := make([]byte, 0, len(b)+2)
	out = protowire.AppendTag(out, 1, protowire.BytesType) // success
	return protowire.AppendBytes(out, b)
}

// proposedPool holds the event slices of appends, which would otherwise
// be regrown from nothing for every append. The store copies what it keeps.
var proposedPool = sync.Pool{New: func() any { return new([]proposed) }}

func getProposed() *[]proposed { return proposedPool.Get().(*[]proposed) }

func putProposed(p *[]proposed) {
	if cap(*p) > 4096 {
		return // a huge append: let the GC have it
	}
	clear(*p) // drop the references to the frames' bytes
	*p = (*p)[:0]
	proposedPool.Put(p)
}

func appendResp(res writeResult) *streams.AppendResp {
	if res.wrong {
		w := &streams.AppendResp_WrongExpectedVersion{}
		if res.actualRev < 0 {
			w.CurrentRevisionOption = &streams.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
			w.CurrentRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
		} else {
			w.CurrentRevisionOption = &streams.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(res.actualRev)}
			w.CurrentRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(res.actualRev)}
		}
		switch res.expected.kind {
		case expectAny:
			w.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
			w.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: &shared.Empty{}}
		case expectExists:
			w.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
			w.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: &shared.Empty{}}
		case expectNoStream:
			w.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
			// The old field had no "no stream" case; real nodes send -1.
			w.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: math.MaxUint64}
		default:
			w.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: res.expected.rev}
			w.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: res.expected.rev}
		}
		return &streams.AppendResp{Result: &streams.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
	}
	s := &streams.AppendResp_Success{}
	if res.noStream {
		s.CurrentRevisionOption = &streams.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
	} else {
		s.CurrentRevisionOption = &streams.AppendResp_Success_CurrentRevision{CurrentRevision: res.revision}
	}
	if res.hasPos {
		s.PositionOption = &streams.AppendResp_Success_Position{Position: &streams.AppendResp_Position{CommitPosition: res.pos, PreparePosition: res.pos}}
	} else {
		s.PositionOption = &streams.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	}
	return &streams.AppendResp{Result: &streams.AppendResp_Success_{Success: s}}
}

// --- delete and tombstone ---

// deleteOptions are what delete and tombstone requests share.
type deleteOptions interface {
	expectedOption
	GetStreamIdentifier() *shared.StreamIdentifier
}

// deleteStream runs del (a soft delete or a tombstone) on the stream opts
// names and returns its commit position. what names the request in the
// answer to one without a stream name (options absent included: their
// getters read as empty).
func deleteStream(ctx context.Context, opts deleteOptions, what string, del func(string, expectation) (uint64, error)) (uint64, error) {
	name := string(opts.GetStreamIdentifier().GetStreamName())
	if name == "" {
		return 0, badRequest(unaryTrailer(ctx), what+" options with a stream name are required")
	}
	pos, err := del(name, toExpectation(opts))
	if err != nil {
		return 0, storeErr(unaryTrailer(ctx), err)
	}
	return pos, nil
}

func (ss *streamsServer) Delete(ctx context.Context, req *streams.DeleteReq) (*streams.DeleteResp, error) {
	pos, err := deleteStream(ctx, req.GetOptions(), "delete", ss.srv.store.softDelete)
	if err != nil {
		return nil, err
	}
	// Never no_position: the client dereferences the position.
	return &streams.DeleteResp{PositionOption: &streams.DeleteResp_Position_{
		Position: &streams.DeleteResp_Position{CommitPosition: pos, PreparePosition: pos}}}, nil
}

func (ss *streamsServer) Tombstone(ctx context.Context, req *streams.TombstoneReq) (*streams.TombstoneResp, error) {
	pos, err := deleteStream(ctx, req.GetOptions(), "tombstone", ss.srv.store.tombstone)
	if err != nil {
		return nil, err
	}
	return &streams.TombstoneResp{PositionOption: &streams.TombstoneResp_Position_{
		Position: &streams.TombstoneResp_Position{CommitPosition: pos, PreparePosition: pos}}}, nil
}

// --- reads ---

func (ss *streamsServer) Read(req *streams.ReadReq, stream streams.Streams_ReadServer) error {
	opts := req.GetOptions()
	setTrailer := stream.SetTrailer
	if opts == nil || opts.UuidOption == nil {
		return badRequest(setTrailer, "read options with a uuid option are required")
	}
	asString := opts.UuidOption.GetString_() != nil
	backwards := opts.ReadDirection == streams.ReadReq_Options_Backwards
	filter, err := ss.srv.compileFilter(opts.GetFilter())
	if err != nil {
		return ss.srv.filterErr(setTrailer, err)
	}
	switch so := opts.StreamOption.(type) {
	case *streams.ReadReq_Options_Stream:
		if filter != nil {
			return badRequest(setTrailer, "filters apply to $all only")
		}
		name := string(so.Stream.GetStreamIdentifier().GetStreamName())
		if name == "" {
			return badRequest(setTrailer, "a stream name is required")
		}
		switch co := opts.CountOption.(type) {
		case *streams.ReadReq_Options_Count:
			return ss.readStream(stream, name, so.Stream, backwards, co.Count, asString)
		case *streams.ReadReq_Options_Subscription:
			if backwards {
				return badRequest(setTrailer, "subscriptions read forwards only")
			}
			return ss.subscribeStream(stream, name, so.Stream, asString)
		}
	case *streams.ReadReq_Options_All:
		switch co := opts.CountOption.(type) {
		case *streams.ReadReq_Options_Count:
			return ss.readAll(stream, so.All, backwards, co.Count, filter, asString)
		case *streams.ReadReq_Options_Subscription:
			if backwards {
				return badRequest(setTrailer, "subscriptions read forwards only")
			}
			return ss.subscribeAll(stream, so.All, filter, opts.GetFilter(), asString)
		}
	}
	return badRequest(setTrailer, "a stream option and a count option are required")
}

func (ss *streamsServer) readStream(stream streams.Streams_ReadServer, name string, o *streams.ReadReq_Options_StreamOptions, backwards bool, count uint64, asString bool) error {
	v := ss.srv.store.streamSnap(name)
	if v.tombstone >= 0 || v.metaOfTombstoned {
		return storeErr(stream.SetTrailer, &streamDeletedError{stream: name})
	}
	if len(v.revs) == 0 || (v.hasMeta && v.meta.tb == softDeletedTB) {
		noteOutcome(stream.Context(), "StreamNotFound")
		return stream.Send(&streams.ReadResp{Content: &streams.ReadResp_StreamNotFound_{
			StreamNotFound: &streams.ReadResp_StreamNotFound{StreamIdentifier: streamID(name)}}})
	}
	lo := v.visibleFrom(name)
	n := int64(len(v.revs))
	now := ss.srv.store.ticks()
	var sent uint64
	send := func(i int64) error {
		r := v.log[v.revs[i]]
		if v.expired(r, now) {
			return nil
		}
		sent++
		return sendEvent(stream, r, asString)
	}
	if !backwards {
		start := int64(0)
		switch {
		case o.GetEnd() != nil:
			start = n
		case o.GetStart() != nil:
		default:
			if o.GetRevision() > uint64(n) {
				start = n
			} else {
				start = int64(o.GetRevision())
			}
		}
		for i := max(start, lo); i < n && sent < count; i++ {
			if err := send(i); err != nil {
				return err
			}
		}
		return nil
	}
	start := n - 1
	switch {
	case o.GetEnd() != nil:
	case o.GetStart() != nil:
		start = 0
	default:
		if o.GetRevision() < uint64(n) {
			start = int64(o.GetRevision())
		}
	}
	for i := start; i >= lo && sent < count; i-- {
		if err := send(i); err != nil {
			return err
		}
	}
	return nil
}

func (ss *streamsServer) readAll(stream streams.Streams_ReadServer, o *streams.ReadReq_Options_AllOptions, backwards bool, count uint64, f *filter, asString bool) error {
	sn := ss.srv.store.snap()
	var start int
	switch {
	case o.GetStart() != nil:
		start = 0
		if backwards {
			return nil
		}
	case o.GetEnd() != nil:
		start = len(sn.log)
	default:
		p := o.GetPosition()
		i, ok := sn.validPosition(p.GetCommitPosition())
		if !ok {
			return status.Error(codes.Unknown, fmt.Sprintf("Invalid position %d/%d.", p.GetCommitPosition(), p.GetPreparePosition()))
		}
		start = i
	}
	// Forwards from start, or backwards from the record before it.
	i, step := start, 1
	if backwards {
		i, step = start-1, -1
	}
	var sent uint64
	for ; i >= 0 && i < len(sn.log) && sent < count; i += step {
		r := sn.log[i]
		if f != nil && !f.match(r) {
			continue
		}
		sent++
		if err := sendEvent(stream, r, asString); err != nil {
			return err
		}
	}
	return nil
}

// sendEvent sends the cached wire form of a record's ReadResp.
func sendEvent(stream streams.Streams_ReadServer, r *record, asString bool) error {
	b, err := encodedEvent(r, asString)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return stream.SendMsg(b)
}
