package sqlite

import (
	"context"
	"errors"
	"strings"

	"github.com/eventsourcing-go/eventsourcing/recorder"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// errClosed is the cause of every operation on a closed factory.
var errClosed = errors.New("sqlite: database is closed")

// wrap maps a driver error onto the recorder's error kinds (see recorder.Wrap);
// an interrupted statement reports SQLITE_INTERRUPT, and Wrap says why.
func wrap(ctx context.Context, op string, err error) error {
	return recorder.Wrap(ctx, op, err, kindOf)
}

func kindOf(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_CONSTRAINT:
			return recorder.ErrIntegrity
		case sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_RANGE:
			return recorder.ErrData
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_FORMAT:
			return recorder.ErrData
		case sqlite3.SQLITE_INTERNAL, sqlite3.SQLITE_NOMEM:
			return recorder.ErrInternal
		case sqlite3.SQLITE_MISUSE:
			return recorder.ErrProgramming
		case sqlite3.SQLITE_CANTOPEN:
			return recorder.ErrConnectionUnavailable
		case sqlite3.SQLITE_ERROR:
			// SQLITE_ERROR covers both bad SQL and some runtime failures; the
			// reference (Python's sqlite3) reports it as operational, but a
			// missing table or a syntax error is a programming error.
			msg := se.Error()
			if strings.Contains(msg, "no such table") || strings.Contains(msg, "syntax error") ||
				strings.Contains(msg, "no such column") {
				return recorder.ErrProgramming
			}
			return recorder.ErrOperational
		default: // BUSY, LOCKED, IOERR, FULL, READONLY, PROTOCOL, INTERRUPT, ...
			return recorder.ErrOperational
		}
	}
	switch {
	case errors.Is(err, errClosed), strings.Contains(err.Error(), "sql: database is closed"):
		return recorder.ErrConnectionUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return recorder.ErrOperational
	}
	return recorder.ErrInterface
}
