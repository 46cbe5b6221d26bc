package postgres

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// errClosed is the cause of every operation on a closed factory.
var errClosed = errors.New("postgres: connection pool is closed")

// wrap maps a driver error onto the recorder's error kinds (see recorder.Wrap),
// so that errors.Is(err, recorder.ErrIntegrity) holds for every unique
// violation and errors.As still finds the *pgconn.PgError.
func wrap(ctx context.Context, op string, err error) error {
	return recorder.Wrap(ctx, op, err, kindOf)
}

func kindOf(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return kindOfCode(pe.Code)
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.Is(err, errClosed):
		return recorder.ErrConnectionUnavailable
	case strings.Contains(err.Error(), "closed pool"):
		return recorder.ErrConnectionUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return recorder.ErrOperational
	case errors.As(err, &ne), pgconn.SafeToRetry(err):
		return recorder.ErrConnectionUnavailable
	}
	return recorder.ErrInterface
}

// kindOfCode maps an SQLSTATE by its class, as the DB-API drivers the
// reference library uses do.
func kindOfCode(code string) error {
	if len(code) < 2 {
		return recorder.ErrDatabase
	}
	switch code[:2] {
	case "23": // integrity constraint violation: 23505 unique_violation among them
		return recorder.ErrIntegrity
	case "22":
		return recorder.ErrData
	case "42", "3D", "3F", "44", "2F":
		return recorder.ErrProgramming
	case "0A":
		return recorder.ErrNotSupported
	case "08":
		return recorder.ErrConnectionUnavailable
	case "XX", "24", "25", "26", "2B", "2D", "F0", "P0":
		return recorder.ErrInternal
	default: // 40 (serialization, deadlock), 53, 54, 55 (lock not available), 57 (cancelled, shutdown), 58, HV...
		return recorder.ErrOperational
	}
}
