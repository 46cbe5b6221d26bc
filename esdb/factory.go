package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/internal/ctxtime"
	"github.com/eventsourcing-go/eventsourcing/persistence"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func init() {
	persistence.Register("eventstoredb", Open, "eventsourcing_eventstoredb")
}

// Open opens the module for one application's configuration (persistence.OpenFunc).
// It does no I/O: the client connects at the first operation, so an unreachable
// server is reported by the first read or write.
func Open(ctx context.Context, env config.Env) (recorder.Factory, error) {
	cfg, err := ParseConfig(env)
	if err != nil {
		return nil, err
	}
	return OpenConfig(ctx, cfg)
}

// OpenConfig opens the module with an explicit configuration.
func OpenConfig(_ context.Context, cfg Config) (*Factory, error) {
	ccfg, err := cfg.clientConfig()
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	f := &Factory{cfg: cfg, ccfg: ccfg, log: cfg.Logger.With("module", "eventstoredb")}
	if f.client, err = esdbclient.NewClient(ccfg); err != nil {
		return nil, fmt.Errorf("%w: %w", config.ErrConfiguration, err)
	}
	f.tracking = newTrackingState()
	f.scope = newScope(cfg.Name)
	return f, nil
}

// errClosed is the cause of every operation on a closed factory.
var errClosed = errors.New("eventstoredb: the persistence module is closed")

// Factory builds the recorders of one application on one client. It is safe
// for concurrent use.
type Factory struct {
	cfg  Config
	ccfg *esdbclient.Configuration
	log  *slog.Logger

	mu     sync.Mutex
	client *esdbclient.Client
	closed atomic.Bool

	tracking *trackingState
	scope    scope
	// positions records whether batch positions derived from record
	// sizes matched the server's (positions.go).
	positions positionCheck

	// calls is held shared by every call in flight and exclusively by
	// Close, which so waits for them: the official client panics when a
	// call fails after its client closed.
	calls sync.RWMutex
	subs  sync.Map // *Subscription -> struct{}: closed by Close first
}

// Client returns the factory's client, for direct use of EventStoreDB beside
// the recorders (see the helpers of this package). It is replaced when it
// closes without being asked to, so do not keep it across failures.
func (f *Factory) Client() (*esdbclient.Client, error) {
	if f.closed.Load() {
		return nil, errClosed
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.client, nil
}

// renew replaces c when it is still the current client. A failed discovery
// closes a client for good (every later call answers ConnectionClosed), so the
// module builds a new one rather than failing forever.
func (f *Factory) renew(c *esdbclient.Client) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Load() || f.client != c {
		return
	}
	nc, err := esdbclient.NewClient(f.ccfg)
	if err != nil { // cannot happen: the configuration parsed at Open
		f.log.Error("rebuilding the EventStoreDB client", "err", err)
		return
	}
	f.log.Warn("the EventStoreDB client closed; rebuilt it")
	_ = c.Close()
	f.client = nc
}

// do runs fn with the client, once more after a renewed client or a
// not-leader answer (the client has then reconnected to the leader). fn must
// be safe to repeat: appends are, because their event ids are fixed before
// the first attempt and the server answers a repeated append idempotently.
func (f *Factory) do(ctx context.Context, fn func(c *esdbclient.Client) error) error {
	f.calls.RLock()
	defer f.calls.RUnlock()
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var c *esdbclient.Client
		if c, err = f.Client(); err != nil {
			return err
		}
		if err = fn(c); err == nil {
			return nil
		}
		if ctx.Err() != nil || f.closed.Load() {
			return err
		}
		switch code(err) {
		case esdbclient.ErrorCodeConnectionClosed:
			f.renew(c)
		case esdbclient.ErrorCodeNotLeader:
		case esdbclient.ErrorUnavailable:
			// The client reconnects at the next call; give it a moment.
			if !ctxtime.Sleep(ctx, 200*time.Millisecond) {
				return err
			}
		default:
			return err
		}
	}
	return err
}

// Close closes the client; recorders and subscriptions built by the factory
// then fail with an error matching recorder.ErrConnectionUnavailable.
func (f *Factory) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	// End the subscriptions, then wait for the calls in flight, before
	// the client closes under them.
	f.subs.Range(func(k, _ any) bool { _ = k.(*Subscription).Close(); return true })
	f.calls.Lock()
	defer f.calls.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.client.Close()
}

// AggregateRecorder builds the recorder of events (recorder.PurposeEvents,
// one stream per aggregate) or of snapshots (recorder.PurposeSnapshots, one
// snapshot-$<id> stream per aggregate).
func (f *Factory) AggregateRecorder(_ context.Context, purpose recorder.Purpose) (recorder.AggregateRecorder, error) {
	switch purpose {
	case recorder.PurposeEvents:
		return &Recorder{f: f}, nil
	case recorder.PurposeSnapshots:
		return &SnapshotRecorder{f: f}, nil
	}
	return nil, purpose.Check()
}

// ApplicationRecorder builds the application recorder: aggregate streams with
// $all as the notification log.
func (f *Factory) ApplicationRecorder(_ context.Context) (recorder.ApplicationRecorder, error) {
	return &Recorder{f: f, application: true}, nil
}

// TrackingRecorder builds a tracking recorder when EVENTSTOREDB_TRACKING_IN_METADATA
// is set, and fails with ErrNotSupported otherwise.
func (f *Factory) TrackingRecorder(ctx context.Context) (recorder.TrackingRecorder, error) {
	return f.ProcessRecorder(ctx)
}

// ProcessRecorder builds a process recorder when EVENTSTOREDB_TRACKING_IN_METADATA
// is set, and fails with ErrNotSupported otherwise: EventStoreDB appends
// atomically to one stream only, so events and a tracking record can be
// written together only in that one stream's metadata.
func (f *Factory) ProcessRecorder(_ context.Context) (recorder.ProcessRecorder, error) {
	if !f.cfg.TrackingInMetadata {
		return nil, recorder.Errorf(recorder.ErrNotSupported, "process recorder",
			"EventStoreDB cannot write events and a tracking record atomically across streams; "+
				"record the process application's events and tracking in sqlite or postgres "+
				"(its own PERSISTENCE_MODULE), or set %s=true to carry tracking in the metadata of single-stream appends",
			KeyTrackingInMetadata)
	}
	return &ProcessRecorder{Recorder: Recorder{f: f, application: true}, downstream: f.cfg.Name}, nil
}

// code returns the client's error code of err (ErrorCodeUnknown for foreign
// errors). The client wraps some errors, so errors.As and not FromError.
func code(err error) esdbclient.ErrorCode {
	var e *esdbclient.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return esdbclient.ErrorCodeUnknown
}

// grpcCode returns the gRPC status code inside err, or codes.OK when there is none.
func grpcCode(err error) codes.Code {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Code()
	}
	return codes.OK
}

// wrap maps a client error onto the recorder's kinds (see recorder.Wrap); a
// cancelled call surfaces as a gRPC Canceled status, and Wrap says why.
func wrap(ctx context.Context, op string, err error) error {
	return recorder.Wrap(ctx, op, err, kindOf)
}

func kindOf(err error) error {
	switch {
	case errors.Is(err, errClosed):
		return recorder.ErrConnectionUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return recorder.ErrOperational
	}
	var e *esdbclient.Error
	if !errors.As(err, &e) {
		return grpcKind(err)
	}
	switch e.Code() {
	case esdbclient.ErrorCodeWrongExpectedVersion:
		return recorder.ErrIntegrity
	case esdbclient.ErrorCodeStreamDeleted, esdbclient.ErrorCodeResourceNotFound, esdbclient.ErrorCodeParsing:
		return recorder.ErrData
	case esdbclient.ErrorCodeConnectionClosed, esdbclient.ErrorUnavailable:
		return recorder.ErrConnectionUnavailable
	case esdbclient.ErrorCodeUnauthenticated, esdbclient.ErrorCodeAccessDenied,
		esdbclient.ErrorCodeDeadlineExceeded, esdbclient.ErrorCodeNotLeader, esdbclient.ErrorAborted:
		return recorder.ErrOperational
	case esdbclient.ErrorCodeUnsupportedFeature:
		return recorder.ErrNotSupported
	case esdbclient.ErrorCodeInternalServer:
		return recorder.ErrInternal
	case esdbclient.ErrorCodeInternalClient:
		return recorder.ErrInterface
	}
	return grpcKind(err)
}

// grpcKind classifies what the client reports as ErrorCodeUnknown (or a raw
// status) by the gRPC status inside it.
func grpcKind(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return recorder.ErrConnectionUnavailable
	}
	switch grpcCode(err) {
	case codes.InvalidArgument, codes.Unknown, codes.FailedPrecondition, codes.OutOfRange:
		// An invalid $all position, an oversize append, a bad request.
		return recorder.ErrData
	case codes.Unavailable:
		return recorder.ErrConnectionUnavailable
	case codes.Internal, codes.DataLoss:
		return recorder.ErrInternal
	case codes.Unimplemented:
		return recorder.ErrNotSupported
	case codes.OK:
		return recorder.ErrInterface
	}
	return recorder.ErrOperational
}
