package esdbtest

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	protobuf "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// writeTimeout is a real node's default write timeout (WriteTimeoutMs):
// the longest a batch append may wait for its final chunk, whatever
// deadline the client asked for.
const writeTimeout = 2 * time.Second

// batchFrame is one BatchAppendReq decoded by hand: its events have the
// layout of an Append's, so they go through the same decoder, and the
// frame is reused for every request of one call.
type batchFrame struct {
	correlation []byte // the encoded correlation_id, echoed in the answer
	options     *streams.BatchAppendReq_Options
	events      []proposed
	isFinal     bool
	// bad is the first problem found in the events, answered as BadRequest.
	bad string
	ev  appendFrame
}

func (f *batchFrame) decode(b []byte) error {
	f.correlation, f.options, f.isFinal, f.bad = nil, nil, false, ""
	f.events = f.events[:0]
	for len(b) > 0 {
		fld, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		switch {
		case fld.num == 4 && fld.typ == protowire.VarintType:
			f.isFinal = fld.varint != 0
		case fld.typ != protowire.BytesType:
		case fld.num == 1:
			f.correlation = fld.bytes
		case fld.num == 2:
			o := &streams.BatchAppendReq_Options{}
			if err := protobuf.Unmarshal(fld.bytes, o); err != nil {
				return err
			}
			f.options = o
		case fld.num == 3:
			if err := f.ev.decodeEvent(fld.bytes); err != nil {
				return err
			}
			if f.bad == "" {
				f.bad = f.ev.problem()
			}
			f.events = append(f.events, f.ev.event)
		}
	}
	// The correlation id is kept past the message buffer, which gRPC reuses.
	f.correlation = append([]byte(nil), f.correlation...)
	return nil
}

// problem says what a decoded event lacks, or "" when it is complete.
func (f *appendFrame) problem() string {
	switch {
	case !f.hasType:
		return "Required Metadata Property 'type' is missing"
	case !f.hasCT:
		return "Required Metadata Property 'content-type' is missing"
	case !f.hasID:
		return "missing event id"
	}
	return ""
}

// batchWrite is an append whose final chunk has not arrived yet.
type batchWrite struct {
	correlation *shared.UUID
	stream      string
	expected    expectation
	events      []proposed
	size        int
	timer       *time.Timer
}

// batchAppender serves one BatchAppend call. Requests are handled in the
// order they arrive; the answers of writes that time out while waiting for
// their final chunk are sent from timers, so sends are serialised.
type batchAppender struct {
	srv    *Server
	stream streams.Streams_BatchAppendServer

	sendMu sync.Mutex
	// sendErr is the first failed send; the call ends with it.
	sendErr error

	mu      sync.Mutex
	pending map[uuid.UUID]*batchWrite
	// timers counts the timers of pending writes that have not been
	// stopped and whose callbacks have not finished: the call may not end
	// while one of them may still send.
	timers sync.WaitGroup
	// idle is closed when the last pending write has timed out and been
	// answered, once the client has finished sending.
	idle chan struct{}
}

// BatchAppend serves the bidirectional append a real node offers since
// 21.10: each request carries a correlation id, the first chunk of a write
// its options, and the chunk marked final commits the write; every write
// is answered once, with its correlation id, in a BatchAppendResp whose
// failures are google.rpc.Status values as the server sends them.
func (ss *streamsServer) BatchAppend(stream streams.Streams_BatchAppendServer) error {
	a := &batchAppender{srv: ss.srv, stream: stream, pending: make(map[uuid.UUID]*batchWrite)}
	var f batchFrame
	for {
		err := stream.RecvMsg(&f)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			a.stopAll()
			return err
		}
		a.handle(&f)
		if err := a.failed(); err != nil {
			a.stopAll()
			return err
		}
	}
	// As on a real node, the call ends once every write has been answered:
	// writes still waiting for their final chunk answer Timeout first.
	if idle := a.waitIdle(); idle != nil {
		select {
		case <-idle:
		case <-stream.Context().Done():
			a.stopAll()
			return stream.Context().Err()
		case <-ss.srv.ctx.Done():
			a.stopAll()
		}
	}
	a.timers.Wait()
	return a.failed()
}

func (a *batchAppender) handle(f *batchFrame) {
	corr := &shared.UUID{}
	id := uuid.Nil
	err := protobuf.Unmarshal(f.correlation, corr)
	if err == nil {
		id, err = fromProtoUUID(corr)
	}
	if err != nil {
		a.send(corr, f.options.GetStreamIdentifier(), batchBadRequest(fmt.Sprintf("invalid correlation id: %v", err)))
		return
	}
	if o := f.options; o != nil && !a.isPending(id) {
		if !a.open(id, corr, o) {
			return
		}
	}
	a.mu.Lock()
	w := a.pending[id]
	if w == nil {
		// No write of that id is open (it timed out, failed or was never
		// opened): a real node ignores the chunk.
		a.mu.Unlock()
		return
	}
	var failure *rpcstatus.Status
	if f.bad != "" {
		failure = batchBadRequest(f.bad)
	} else {
		for i := range f.events {
			w.size += sizeOnDisk(&f.events[i])
		}
		w.events = append(w.events, f.events...)
		if w.size > maxAppendSize {
			failure = newStatus(code.Code_INVALID_ARGUMENT, "MaximumAppendSizeExceeded",
				&shared.MaximumAppendSizeExceeded{MaxAppendSize: maxAppendSize})
		}
	}
	if failure == nil && !f.isFinal {
		a.mu.Unlock()
		return
	}
	a.removeLocked(id)
	a.mu.Unlock()
	if failure != nil {
		a.send(w.correlation, streamID(w.stream), failure)
		return
	}
	res, err := a.srv.store.append(w.stream, w.expected, w.events)
	a.answer(w, res, err)
}

func (a *batchAppender) isPending(id uuid.UUID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending[id] != nil
}

// open starts a write from the options of its first chunk; it answers and
// reports false when the options are refused.
func (a *batchAppender) open(id uuid.UUID, corr *shared.UUID, o *streams.BatchAppendReq_Options) bool {
	name := string(o.GetStreamIdentifier().GetStreamName())
	if name == "" {
		a.send(corr, o.GetStreamIdentifier(), batchBadRequest("Required field StreamIdentifier not set."))
		return false
	}
	var exp expectation
	switch o.GetExpectedStreamPosition().(type) {
	case *streams.BatchAppendReq_Options_StreamPosition:
		exp = expectation{kind: expectRevision, rev: o.GetStreamPosition()}
	case *streams.BatchAppendReq_Options_NoStream:
		exp = expectation{kind: expectNoStream}
	case *streams.BatchAppendReq_Options_Any:
		exp = expectation{kind: expectAny}
	case *streams.BatchAppendReq_Options_StreamExists:
		exp = expectation{kind: expectExists}
	default:
		a.send(corr, o.GetStreamIdentifier(), batchBadRequest("Required field ExpectedStreamPosition not set."))
		return false
	}
	timeout := min(requestedTimeout(o, time.Now()), writeTimeout)
	if timeout <= 0 {
		a.send(corr, o.GetStreamIdentifier(), newStatus(code.Code_DEADLINE_EXCEEDED, "Timeout", &shared.Timeout{}))
		return false
	}
	w := &batchWrite{correlation: corr, stream: name, expected: exp}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending[id] = w
	a.timers.Add(1)
	w.timer = time.AfterFunc(timeout, func() {
		defer a.timers.Done()
		a.mu.Lock()
		if a.pending[id] != w {
			a.mu.Unlock()
			return
		}
		delete(a.pending, id)
		a.mu.Unlock()
		a.send(w.correlation, streamID(w.stream), newStatus(code.Code_DEADLINE_EXCEEDED, "Timeout", &shared.Timeout{}))
		a.mu.Lock()
		if len(a.pending) == 0 && a.idle != nil {
			close(a.idle)
			a.idle = nil
		}
		a.mu.Unlock()
	})
	return true
}

// requestedTimeout is how long the client gives the write: a duration, a
// point in time (clients of 21.10), or no limit.
func requestedTimeout(o *streams.BatchAppendReq_Options, now time.Time) time.Duration {
	switch d := o.GetDeadlineOption().(type) {
	case *streams.BatchAppendReq_Options_Deadline:
		return d.Deadline.AsDuration()
	case *streams.BatchAppendReq_Options_Deadline_21_10_0:
		return d.Deadline_21_10_0.AsTime().Sub(now)
	}
	return writeTimeout
}

// removeLocked forgets a pending write before its timer fires; the caller
// holds a.mu.
func (a *batchAppender) removeLocked(id uuid.UUID) {
	w := a.pending[id]
	if w == nil {
		return
	}
	if w.timer.Stop() {
		a.timers.Done()
	}
	delete(a.pending, id)
}

// waitIdle returns a channel closed when no write is pending, or nil when
// none is.
func (a *batchAppender) waitIdle() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) == 0 {
		return nil
	}
	a.idle = make(chan struct{})
	return a.idle
}

// stopAll drops every pending write without answering it and waits for
// timers that have fired already.
func (a *batchAppender) stopAll() {
	a.mu.Lock()
	for id := range a.pending {
		a.removeLocked(id)
	}
	a.mu.Unlock()
	a.timers.Wait()
}

func (a *batchAppender) answer(w *batchWrite, res writeResult, err error) {
	var del *streamDeletedError
	switch {
	case errors.As(err, &del):
		a.send(w.correlation, streamID(w.stream), newStatus(code.Code_NOT_FOUND, "StreamDeleted",
			&shared.StreamDeleted{StreamIdentifier: streamID(w.stream)}))
	case err != nil:
		a.send(w.correlation, streamID(w.stream), newStatus(code.Code_UNKNOWN, "Unknown", &shared.Unknown{}))
	case res.wrong:
		a.send(w.correlation, streamID(w.stream), newStatus(code.Code_ALREADY_EXISTS, "WrongExpectedVersion",
			wrongExpectedVersion(res)))
	default:
		a.sendResp(&streams.BatchAppendResp{
			CorrelationId:    w.correlation,
			StreamIdentifier: streamID(w.stream),
			Result:           &streams.BatchAppendResp_Success_{Success: batchSuccess(res)},
		})
	}
}

func batchSuccess(res writeResult) *streams.BatchAppendResp_Success {
	s := &streams.BatchAppendResp_Success{}
	if res.noStream {
		s.CurrentRevisionOption = &streams.BatchAppendResp_Success_NoStream{NoStream: &emptypb.Empty{}}
	} else {
		s.CurrentRevisionOption = &streams.BatchAppendResp_Success_CurrentRevision{CurrentRevision: res.revision}
	}
	if res.hasPos {
		s.PositionOption = &streams.BatchAppendResp_Success_Position{Position: &shared.AllStreamPosition{
			CommitPosition: res.pos, PreparePosition: res.pos}}
	} else {
		s.PositionOption = &streams.BatchAppendResp_Success_NoPosition{NoPosition: &emptypb.Empty{}}
	}
	return s
}

// wrongExpectedVersion is the detail of a failed expected-revision check,
// with the stream's current revision.
func wrongExpectedVersion(res writeResult) *shared.WrongExpectedVersion {
	w := &shared.WrongExpectedVersion{}
	if res.actualRev < 0 {
		w.CurrentStreamRevisionOption = &shared.WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &emptypb.Empty{}}
	} else {
		w.CurrentStreamRevisionOption = &shared.WrongExpectedVersion_CurrentStreamRevision{CurrentStreamRevision: uint64(res.actualRev)}
	}
	switch res.expected.kind {
	case expectAny:
		w.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedAny{ExpectedAny: &emptypb.Empty{}}
	case expectNoStream:
		w.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &emptypb.Empty{}}
	case expectExists:
		w.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &emptypb.Empty{}}
	default:
		w.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedStreamPosition{ExpectedStreamPosition: res.expected.rev}
	}
	return w
}

// newStatus is a google.rpc.Status whose details carry one message, as a
// real node builds its batch append failures.
func newStatus(c code.Code, msg string, detail protobuf.Message) *rpcstatus.Status {
	d, err := anypb.New(detail)
	if err != nil {
		// Only an unregistered message type fails; every detail here is a
		// generated type.
		panic(fmt.Sprintf("esdbtest: pack status detail: %v", err))
	}
	return &rpcstatus.Status{Code: int32(c), Message: msg, Details: []*anypb.Any{d}}
}

func batchBadRequest(msg string) *rpcstatus.Status {
	return newStatus(code.Code_INVALID_ARGUMENT, "BadRequest", &shared.BadRequest{Message: msg})
}

func (a *batchAppender) send(corr *shared.UUID, id *shared.StreamIdentifier, st *rpcstatus.Status) {
	a.sendResp(&streams.BatchAppendResp{CorrelationId: corr, StreamIdentifier: id,
		Result: &streams.BatchAppendResp_Error{Error: st}})
}

func (a *batchAppender) sendResp(r *streams.BatchAppendResp) {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	if a.sendErr != nil {
		return
	}
	a.srv.logWrite(r)
	if err := a.stream.Send(r); err != nil {
		a.sendErr = err
	}
}

func (a *batchAppender) failed() error {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	return a.sendErr
}

// sizeOnDisk is what a real node counts of an event against the maximum
// append size: its data only.
func sizeOnDisk(e *proposed) int { return len(e.Data) }
