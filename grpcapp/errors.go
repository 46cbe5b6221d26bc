package grpcapp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsourcing-go/eventsourcing"
)

// Errors of the gRPC layer. Errors returned by a server's application travel
// as gRPC status codes with an ErrorInfo detail and come back as *Error values
// that match the framework's own sentinels with errors.Is:
//
//	_, err := grpcapp.Call[Order](ctx, orders, "GetOrder", id)
//	if errors.Is(err, eventsourcing.ErrAggregateNotFound) { ... }
var (
	// ErrUnavailable reports that the server could not be reached.
	ErrUnavailable = errors.New("grpcapp: service unavailable")
	// ErrDeadlineExceeded reports a call that did not complete within its deadline.
	ErrDeadlineExceeded = errors.New("grpcapp: deadline exceeded")
	// ErrClientClosed reports a call made after Close.
	ErrClientClosed = errors.New("grpcapp: client closed")
	// ErrUnknownMethod reports a method the server does not expose (also the
	// embedded framework's own methods, such as Save or Close, which are
	// never callable remotely).
	ErrUnknownMethod = errors.New("grpcapp: unknown method")
	// ErrServerStarted reports a second Start of a server or runner.
	ErrServerStarted = errors.New("grpcapp: already started")
	// ErrInsecureAddress reports plaintext asked for on an address that is not
	// loopback-only.
	ErrInsecureAddress = errors.New("grpcapp: plaintext is allowed only on loopback addresses (localhost, 127.0.0.1, [::1] with a port)")
	// ErrInvalidAddress reports an address that is not host:port.
	ErrInvalidAddress = errors.New("grpcapp: invalid address")
	// ErrRemote is matched by every error a server returned (as opposed to
	// failures to reach it).
	ErrRemote = errors.New("grpcapp: remote error")
)

// errorDomain is the ErrorInfo domain of the reasons below.
const errorDomain = "eventsourcing-go.grpcapp"

// Reasons in the ErrorInfo detail: stable strings, part of the protocol.
const (
	ReasonNotFound      = "AGGREGATE_NOT_FOUND"
	ReasonIntegrity     = "INTEGRITY"
	ReasonArgument      = "INVALID_ARGUMENT"
	ReasonUnknownMethod = "UNKNOWN_METHOD"
	ReasonAggregateType = "AGGREGATE_TYPE"
	ReasonPersistence   = "PERSISTENCE"
	ReasonApplication   = "APPLICATION_ERROR"
	ReasonPanic         = "PANIC"
)

// reasonKinds maps reasons back to the sentinels clients test for.
var reasonKinds = map[string]error{
	ReasonNotFound:      eventsourcing.ErrAggregateNotFound,
	ReasonIntegrity:     eventsourcing.ErrIntegrity,
	ReasonArgument:      eventsourcing.ErrArgument,
	ReasonUnknownMethod: ErrUnknownMethod,
	ReasonAggregateType: eventsourcing.ErrAggregateType,
	ReasonPersistence:   eventsourcing.ErrPersistence,
}

// Error is an error the server returned: its gRPC code, the reason from its
// ErrorInfo detail (empty when the server gave none) and the server's message.
// It matches ErrRemote and the sentinel of its reason (or of its code, for
// Unavailable and DeadlineExceeded) with errors.Is.
type Error struct {
	Code    codes.Code
	Reason  string
	Message string
	// Method is the remote method or RPC that failed.
	Method string
	kind   error
}

func (e *Error) Error() string {
	return fmt.Sprintf("grpcapp: %s: %s: %s", e.Method, e.Code, e.Message)
}

// Unwrap returns the sentinels the error matches.
func (e *Error) Unwrap() []error {
	errs := []error{ErrRemote}
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	return errs
}

// GRPCStatus lets status.FromError see the original status again.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// toStatus converts an application's error into a gRPC status error with a
// typed ErrorInfo detail. An error that already carries a status (a
// GRPCStatus method anywhere in its chain) keeps it, so applications can
// choose codes for their own domain errors.
func toStatus(err error, method string) error {
	if err == nil {
		return nil
	}
	var code codes.Code
	var reason string
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, ErrUnknownMethod):
		code, reason = codes.Unimplemented, ReasonUnknownMethod
	case errors.Is(err, eventsourcing.ErrAggregateNotFound):
		code, reason = codes.NotFound, ReasonNotFound
	case errors.Is(err, eventsourcing.ErrIntegrity):
		// Aborted, not AlreadyExists: a conflict is the optimistic-concurrency
		// error, which the caller resolves by reading again and retrying.
		code, reason = codes.Aborted, ReasonIntegrity
	case errors.Is(err, eventsourcing.ErrArgument):
		code, reason = codes.InvalidArgument, ReasonArgument
	case errors.Is(err, eventsourcing.ErrAggregateType):
		code, reason = codes.FailedPrecondition, ReasonAggregateType
	default:
		if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
			return s.Err()
		}
		if errors.Is(err, eventsourcing.ErrPersistence) {
			code, reason = codes.Internal, ReasonPersistence
		} else {
			code, reason = codes.Unknown, ReasonApplication
		}
	}
	st := status.New(code, err.Error())
	if d, derr := st.WithDetails(&errdetails.ErrorInfo{
		Reason:   reason,
		Domain:   errorDomain,
		Metadata: map[string]string{"method": method},
	}); derr == nil {
		st = d
	}
	return st.Err()
}

// fromStatus converts an RPC's error into an *Error matching the sentinels.
// Errors of the local context stay what they are, so that a caller's own
// cancellation is still context.Canceled.
func fromStatus(ctx context.Context, err error, method string) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("grpcapp: %s: %w", method, ctxErr)
	}
	if status.Code(err) == codes.DeadlineExceeded && callerDeadlinePassed(ctx) {
		// The caller's deadline travels with the request, and the server's
		// timer for it can fire a moment before the caller's own: the call
		// still ended because of the caller's deadline.
		return fmt.Errorf("grpcapp: %s: %w", method, context.DeadlineExceeded)
	}
	s, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("grpcapp: %s: %w", method, err)
	}
	e := &Error{Code: s.Code(), Message: s.Message(), Method: method}
	for _, d := range s.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errorDomain {
			e.Reason = info.GetReason()
			e.kind = reasonKinds[e.Reason]
		}
	}
	if e.kind == nil {
		switch e.Code {
		case codes.Unavailable:
			e.kind = ErrUnavailable
		case codes.DeadlineExceeded:
			e.kind = ErrDeadlineExceeded
		case codes.Unimplemented:
			e.kind = ErrUnknownMethod
		case codes.InvalidArgument, codes.OutOfRange:
			e.kind = eventsourcing.ErrArgument
		case codes.ResourceExhausted:
			// An oversized request or reply is a bad argument from the
			// caller's point of view.
			e.kind = eventsourcing.ErrArgument
		}
	}
	return e
}

// deadlineSkew is how far ahead of the caller's own timer the server's copy of
// the caller's deadline may fire on the same host.
const deadlineSkew = 20 * time.Millisecond

// callerDeadlinePassed reports whether ctx has a deadline that has passed, or
// is about to (within deadlineSkew).
func callerDeadlinePassed(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) <= deadlineSkew
}
