package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// writer is the database's one writer. Writes queue up; whoever takes the turn
// runs every queued write in one transaction, each in its own savepoint, and
// commits once. While one commit waits for its fsync the next writes gather, so
// concurrent savers share fsyncs instead of queueing for one each, and a write
// that fails rolls back to its savepoint without failing the others.
type writer struct {
	db     *sql.DB
	signal *recorder.Signal
	turn   chan struct{} // holds a token while a transaction is open

	mu     sync.Mutex
	queue  []*write
	closed bool
}

// write is one queued unit of work.
type write struct {
	fn   func(ctx context.Context, tx *sql.Tx) error
	op   string
	ctx  context.Context
	err  error
	done chan struct{}
}

func newWriter(db *sql.DB, signal *recorder.Signal) *writer {
	return &writer{db: db, signal: signal, turn: make(chan struct{}, 1)}
}

// do runs fn in a write transaction, possibly shared with other writes, and
// returns when that transaction has committed (or fn's work was rolled back).
// fn must not keep state outside tx that a retry would duplicate: it is called
// once.
func (w *writer) do(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error, op string) error {
	wr := &write{fn: fn, op: op, ctx: ctx, done: make(chan struct{})}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return &recorder.Error{Kind: recorder.ErrConnectionUnavailable, Op: op, Err: errClosed}
	}
	w.queue = append(w.queue, wr)
	w.mu.Unlock()
	for {
		select {
		case <-wr.done:
			return wr.err
		case w.turn <- struct{}{}:
			w.runQueued()
			<-w.turn
		case <-ctx.Done():
			w.mu.Lock()
			i := slices.Index(w.queue, wr)
			if i >= 0 {
				w.queue = slices.Delete(w.queue, i, i+1)
			}
			w.mu.Unlock()
			if i >= 0 {
				return wrap(ctx, op, ctx.Err())
			}
			// Already taken by a transaction: its outcome is ours.
			<-wr.done
			return wr.err
		}
	}
}

// runQueued runs the queued writes in one transaction; the caller has the turn.
func (w *writer) runQueued() {
	w.mu.Lock()
	batch := w.queue
	w.queue = nil
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	// The transaction serves several callers, so no one caller's cancellation
	// may abort it; each write's own context is checked before it runs.
	ctx := context.WithoutCancel(batch[0].ctx)
	committed := false
	defer func() {
		for _, wr := range batch {
			close(wr.done)
		}
		if committed {
			w.signal.Notify()
		}
	}()
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		for _, wr := range batch {
			wr.err = wrap(ctx, wr.op, err)
		}
		return
	}
	ok := 0
	if len(batch) == 1 {
		wr := batch[0]
		wr.err = w.run(tx, wr)
		if wr.err == nil {
			ok++
		}
	} else {
		for i, wr := range batch {
			sp := fmt.Sprintf("w%d", i)
			if _, err := tx.ExecContext(ctx, "SAVEPOINT "+sp); err != nil {
				wr.err = wrap(ctx, wr.op, err)
				continue
			}
			wr.err = w.run(tx, wr)
			if wr.err != nil {
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO "+sp); err != nil {
					// The transaction is in an unknown state: fail it all.
					_ = tx.Rollback()
					for _, wr := range batch {
						if wr.err == nil {
							wr.err = wrap(ctx, wr.op, err)
						}
					}
					return
				}
			} else {
				ok++
			}
			if _, err := tx.ExecContext(ctx, "RELEASE "+sp); err != nil && wr.err == nil {
				wr.err = wrap(ctx, wr.op, err)
			}
		}
	}
	if ok == 0 {
		_ = tx.Rollback()
		return
	}
	if err := tx.Commit(); err != nil {
		for _, wr := range batch {
			if wr.err == nil {
				wr.err = wrap(ctx, wr.op, fmt.Errorf("commit: %w", err))
			}
		}
		return
	}
	committed = true
}

func (w *writer) run(tx *sql.Tx, wr *write) error {
	if err := wr.ctx.Err(); err != nil {
		return wrap(wr.ctx, wr.op, err)
	}
	return wrap(wr.ctx, wr.op, wr.fn(context.WithoutCancel(wr.ctx), tx))
}

// hold starts a write transaction outside the queue and keeps the turn until
// the returned function commits it (true) or rolls it back (false). It is the
// HoldInsert test hook's transaction.
func (w *writer) hold(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error, op string) (func(ctx context.Context, commit bool) error, error) {
	select {
	case w.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, wrap(ctx, op, ctx.Err())
	}
	tx, err := w.db.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		<-w.turn
		return nil, wrap(ctx, op, err)
	}
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback()
		<-w.turn
		return nil, wrap(ctx, op, err)
	}
	var once sync.Once
	return func(ctx context.Context, commit bool) (err error) {
		err = errClosed
		once.Do(func() {
			defer func() { <-w.turn }()
			if !commit {
				err = wrap(ctx, op, tx.Rollback())
				return
			}
			if err = tx.Commit(); err != nil {
				err = wrap(ctx, op, err)
				return
			}
			w.signal.Notify()
		})
		return err
	}, nil
}

// close fails queued writes and refuses new ones; a running transaction ends
// normally.
func (w *writer) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for _, wr := range w.queue {
		wr.err = &recorder.Error{Kind: recorder.ErrConnectionUnavailable, Op: wr.op, Err: errClosed}
		close(wr.done)
	}
	w.queue = nil
}
