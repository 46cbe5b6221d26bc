package recorder

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// kind is an error value with a parent kind, so that errors.Is(ErrIntegrity,
// ErrDatabase) and errors.Is(ErrIntegrity, ErrPersistence) hold, as in the
// DB-API hierarchy the reference library follows.
type kind struct {
	msg    string
	parent error
}

func (k *kind) Error() string { return k.msg }
func (k *kind) Unwrap() error { return k.parent }

func newKind(msg string, parent error) error { return &kind{msg: msg, parent: parent} }

// Error kinds. Every backend maps its driver's errors onto these, so callers test
// them with errors.Is whatever module is configured.
var (
	// ErrPersistence is the parent of every storage error.
	ErrPersistence = newKind("persistence error", nil)
	// ErrInterface reports a problem with the database interface rather than the database.
	ErrInterface = newKind("interface error", ErrPersistence)
	// ErrDatabase is the parent of errors raised by the database.
	ErrDatabase = newKind("database error", ErrPersistence)
	// ErrIntegrity reports a conflict: a duplicate (originator id, version) or a
	// tracking position that does not advance. It is the optimistic-concurrency error.
	ErrIntegrity = newKind("integrity error", ErrDatabase)
	// ErrData reports bad data, such as an event too large for the store or a corrupt row.
	ErrData = newKind("data error", ErrDatabase)
	// ErrOperational reports a failure of the database's operation (locks, I/O, disconnection).
	ErrOperational = newKind("operational error", ErrDatabase)
	// ErrInternal reports an internal error of the database.
	ErrInternal = newKind("internal error", ErrDatabase)
	// ErrProgramming reports a misuse: a bad query, a bad name, a wrong argument.
	ErrProgramming = newKind("programming error", ErrDatabase)
	// ErrNotSupported reports an operation the backend cannot do.
	ErrNotSupported = newKind("not supported", ErrDatabase)
	// ErrConnectionUnavailable reports that no connection to the database could be had.
	ErrConnectionUnavailable = newKind("connection unavailable", ErrOperational)

	// ErrTimeout reports that a wait ended at its deadline.
	ErrTimeout = errors.New("timed out")
	// ErrWaitInterrupted reports that a wait was interrupted (its context ended).
	ErrWaitInterrupted = errors.New("wait interrupted")
	// ErrSubscriptionClosed is returned by Subscription.Next after Close.
	ErrSubscriptionClosed = errors.New("subscription closed")
	// ErrInfrastructureFactory reports that no persistence module could be opened.
	ErrInfrastructureFactory = errors.New("infrastructure factory error")
)

// ErrConflict is ErrIntegrity under the name most users of event stores expect.
var ErrConflict = ErrIntegrity

// Error carries the context of a failed storage operation. It matches its Kind
// and its cause with errors.Is and errors.As, so a conflict stays a conflict
// through every wrapping layer and the driver's error is still reachable.
type Error struct {
	Kind         error  // one of the kinds above
	Op           string // what was being done, e.g. "insert events"
	OriginatorID string // the aggregate concerned, if any
	Version      int64  // its version, if OriginatorID is set
	Err          error  // the cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.OriginatorID != "" {
		fmt.Fprintf(&b, "originator %s version %d: ", e.OriginatorID, e.Version)
	}
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	}
	if e.Err != nil {
		if e.Kind != nil {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the kind and the cause.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Errorf returns an *Error of the given kind with a formatted cause.
func Errorf(kind error, op string, format string, args ...any) error {
	return &Error{Kind: kind, Op: op, Err: fmt.Errorf(format, args...)}
}

// Wrap is how backends turn a driver's error into an *Error: nil stays nil, an
// *Error passes through unchanged (it was classified deeper down), and any
// other error gets the kind that kindOf assigns, with the driver's error kept
// as the cause for errors.As. When ctx has ended, its error is joined in, so
// errors.Is(err, context.Canceled) holds whatever the driver reported for an
// interrupted call.
func Wrap(ctx context.Context, op string, err error, kindOf func(error) error) error {
	if err == nil {
		return nil
	}
	var re *Error
	if errors.As(err, &re) {
		return err
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	return &Error{Kind: kindOf(err), Op: op, Err: err}
}
