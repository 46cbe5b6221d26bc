package postgres

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eventsourcing-go/eventsourcing/internal/sqlrows"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// maxGroup caps the saves of one group commit. Each save of a group runs in
// its own subtransaction (a savepoint), and a backend caches the ids of at
// most 64 of them: past that, every other session's snapshots must look
// subtransactions up in pg_subtrans, which slows the whole server down.
const maxGroup = 64

// save is one queued InsertEvents call on the events table.
type save struct {
	ctx    context.Context
	events []recorder.StoredEvent
	track  *recorder.Tracking
	ids    []int64
	err    error // the cause; the caller wraps it with its own context
	done   chan struct{}
}

// committer groups the concurrent saves of one factory's events table into
// shared transactions.
//
// Every save takes the table lock in EXCLUSIVE mode (that is what keeps
// notification ids in commit order) and holds it through its commit's fsync,
// so one save at a time can run, whatever the number of callers. So saves
// queue up, and whoever takes the turn — one of the callers; there is no
// goroutine of its own — runs the queued saves in one transaction: the lock,
// then each save in its own savepoint, then one COMMIT, one fsync and one
// NOTIFY for them all. While one group commits the next gathers, and a
// conflict rolls back to its save's savepoint and fails that save alone.
//
// A save is cancellable while it is queued. Once a group has taken it, it is
// written or not with its group, and the group's statements are not
// interrupted: the pipeline is already on the server, which would run it to
// its COMMIT after a client that gave up, and an interrupted COMMIT is
// ambiguous. That is safe because a group waits for no other session: within
// the process the turn serialises groups, so the lock is taken with NOWAIT.
// When another process (or HoldInsert) holds it, the saves go back to the head
// of the queue, cancellable again, while the leader waits for the lock on its
// own context; the group is then taken afresh.
type committer struct {
	f       *Factory
	turn    chan struct{}   // holds a token while a group runs
	stopped context.Context // ends on close, to stop a wait for the lock
	stop    context.CancelFunc

	mu     sync.Mutex
	queue  []*save
	closed bool
}

func newCommitter(f *Factory) *committer {
	stopped, stop := context.WithCancel(context.Background())
	return &committer{f: f, turn: make(chan struct{}, 1), stopped: stopped, stop: stop}
}

// do queues s and returns when it has committed or failed; the error is the
// cause, not yet wrapped. A save whose context ends while it is queued leaves
// the queue and is not written; see committer.
func (c *committer) do(s *save) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errClosed
	}
	c.queue = append(c.queue, s)
	c.mu.Unlock()
	for {
		// Done first: when the save is finished and the turn free at once,
		// return rather than lead a group of others' saves.
		select {
		case <-s.done:
			return s.err
		default:
		}
		select {
		case <-s.done:
			return s.err
		case c.turn <- struct{}{}:
			c.lead(s.ctx)
			<-c.turn
		case <-s.ctx.Done():
			c.mu.Lock()
			i := slices.Index(c.queue, s)
			if i >= 0 {
				c.queue = slices.Delete(c.queue, i, i+1)
			}
			c.mu.Unlock()
			if i >= 0 {
				return s.ctx.Err()
			}
			// Taken by a group, whose pipeline waits for no other
			// session: its outcome, written or not, is ours.
			<-s.done
			return s.err
		}
	}
}

// take removes up to maxGroup saves from the head of the queue and returns
// them; those whose context has ended fail with its error instead.
func (c *committer) take() []*save {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(c.queue), maxGroup)
	var group []*save
	for _, s := range c.queue[:n] {
		if err := s.ctx.Err(); err != nil {
			s.err = err
			close(s.done)
			continue
		}
		group = append(group, s)
	}
	c.queue = slices.Delete(c.queue, 0, n)
	return group
}

// requeue puts a group that wrote nothing back at the head of the queue.
// Under the mutex, so a caller whose context ends meanwhile either finds its
// save queued or sees it failed here.
func (c *committer) requeue(group []*save) {
	c.mu.Lock()
	defer c.mu.Unlock()
	live := group[:0]
	for _, s := range group {
		switch {
		case c.closed:
			s.err = errClosed
			close(s.done)
		case s.ctx.Err() != nil:
			s.err = s.ctx.Err()
			close(s.done)
		default:
			live = append(live, s)
		}
	}
	c.queue = append(live, c.queue...)
}

// fail fails the next group's saves with err.
func (c *committer) fail(err error) {
	for _, s := range c.take() {
		s.err = err
		close(s.done)
	}
}

// lead runs the next group; the caller has the turn, and ctx is its save's.
func (c *committer) lead(ctx context.Context) {
	c.mu.Lock()
	queued := len(c.queue)
	c.mu.Unlock()
	if queued == 0 {
		return
	}
	pc, err := c.f.acquire(ctx, "insert events")
	if err != nil {
		if ctx.Err() == nil { // not only the leader's problem
			c.fail(err)
		}
		return
	}
	defer pc.Release()
	conn := pc.Conn()
	defer endTx(ctx, conn)
	if err := c.prepare(ctx, conn); err != nil {
		if ctx.Err() == nil {
			c.fail(c.closedOr(err))
		}
		return
	}

	group := c.take()
	if len(group) == 0 {
		return
	}
	wctx := context.WithoutCancel(ctx)
	committed, err := c.write(wctx, conn, group, false)
	if errors.Is(err, errLockBusy) {
		// Another session holds the lock: wait for it with the saves back in
		// the queue, and on the leader's context only.
		endTx(wctx, conn)
		c.requeue(group)
		if err := c.lock(ctx, conn); err != nil {
			if ctx.Err() == nil {
				c.fail(c.closedOr(err)) // they would wait as long (lock timeout) or fail alike
			}
			return
		}
		if group = c.take(); len(group) == 0 {
			return
		}
		committed, _ = c.write(wctx, conn, group, true)
	}
	for _, s := range group {
		close(s.done)
	}
	if committed {
		c.f.signal.Notify()
	}
}

// bounded returns ctx, ended also by the factory's Close, for the waits of a
// leader for the table lock: Close would otherwise wait for the leader's
// connection as long as another session holds the lock.
func (c *committer) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.stopped, cancel)
	return ctx, func() { stop(); cancel() }
}

// closedOr returns errClosed when Close ended the wait that failed with
// err (it cancels the leader's waits), else err.
func (c *committer) closedOr(err error) error {
	if c.stopped.Err() != nil {
		return errClosed
	}
	return err
}

// prepare prepares a group's statements on conn, by name, before the
// group's pipeline is sent. Parsing the INSERT takes a lock on the table
// that conflicts with another session's table lock, so it is done here, where
// waiting is cancellable and writes nothing, rather than in the pipeline. And
// unlike the statements pgx caches by itself, named statements survive a
// failed batch: pgx would prepare those again, which the server refuses in
// the aborted transaction a conflict leaves for ROLLBACK TO SAVEPOINT. After a
// connection's first group, conn.Prepare is a map lookup.
func (c *committer) prepare(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	for _, st := range c.f.groupStatements {
		if _, err := conn.Prepare(ctx, st.name, st.sql); err != nil {
			return err
		}
	}
	return nil
}

// lock begins a transaction and waits for the table lock, bounded by
// POSTGRES_LOCK_TIMEOUT (if set), by ctx and by Close.
func (c *committer) lock(ctx context.Context, conn *pgx.Conn) error {
	f := c.f
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if f.setLockTimeout != "" {
		b.Queue(f.setLockTimeout)
	}
	b.Queue(f.lockEvents)
	return conn.SendBatch(ctx, b).Close()
}

// close fails the queued saves and refuses new ones; a running group ends
// normally (the pool's Close waits for its connection).
func (c *committer) close() {
	c.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, s := range c.queue {
		s.err = errClosed
		close(s.done)
	}
	c.queue = nil
}

// errLockBusy reports that LOCK ... NOWAIT found the lock held by another session.
var errLockBusy = errors.New("the events table is locked by another session")

// step says what a statement of a group's pipeline is, to read its result.
type step struct {
	kind int
	save int // index in the group, for savepoints and inserts
}

const (
	stepExec   = iota // BEGIN, SAVEPOINT, RELEASE, NOTIFY, COMMIT...
	stepLock          // LOCK TABLE ... NOWAIT
	stepInsert        // a save's INSERT ... RETURNING notification_id
)

// write writes a group in one transaction and sets each save's ids or error;
// it reports whether the transaction committed anything. Unless locked (the
// transaction is open and holds the lock), it begins with BEGIN and LOCK
// NOWAIT, and returns errLockBusy, having written nothing and set no save's
// result, when another session holds the lock.
//
// The statements are pipelined: BEGIN, the lock, each save's SAVEPOINT, INSERT
// and RELEASE, NOTIFY and COMMIT go in one round trip. A failed INSERT makes
// the server skip the rest of the pipeline, so the save is failed, and the
// next pipeline rolls back to its savepoint and sends the saves after it
// again, with the NOTIFY and COMMIT: one more round trip per failed save, and
// still one commit. A group of one save needs no savepoint. The statements
// are the ones prepare prepared, queued by name.
func (c *committer) write(ctx context.Context, conn *pgx.Conn, group []*save, locked bool) (committed bool, err error) {
	fail := func(err error) {
		for _, s := range group {
			if s.err == nil {
				s.ids, s.err = nil, err
			}
		}
	}
	multi := len(group) > 1
	traced := c.f.traced
	next := 0 // the first save not yet sent
	var b pgx.Batch
	var steps []step
	queue := func(kind, i int, sql string, args ...any) {
		b.Queue(sql, args...)
		steps = append(steps, step{kind, i})
	}
	for {
		b.QueuedQueries, steps = b.QueuedQueries[:0], steps[:0]
		switch {
		case next > 0:
			queue(stepExec, -1, stmtRollbackTo)
			queue(stepExec, -1, stmtRelease)
		case !locked:
			queue(stepExec, -1, stmtBegin)
			queue(stepLock, -1, stmtLockNowait)
		}
		for i, s := range group[next:] {
			if multi {
				queue(stepExec, next+i, stmtSavepoint)
			}
			switch {
			case len(s.events) == 1 && s.track != nil:
				queue(stepInsert, next+i, stmtInsertOneTrack, insertOneArgs(s.events[0], s.track, traced)...)
			case len(s.events) == 1:
				queue(stepInsert, next+i, stmtInsertOne, insertOneArgs(s.events[0], nil, traced)...)
			case s.track != nil:
				queue(stepInsert, next+i, stmtInsertTracking, insertArgs(s.events, s.track, traced)...)
			default:
				queue(stepInsert, next+i, stmtInsert, insertArgs(s.events, nil, traced)...)
			}
			if multi {
				queue(stepExec, next+i, stmtRelease)
			}
		}
		writes := len(group) > next
		for _, s := range group[:next] {
			writes = writes || s.err == nil
		}
		if writes {
			queue(stepExec, -1, stmtNotify)
			queue(stepExec, -1, stmtCommit)
		} else {
			queue(stepExec, -1, stmtRollback) // every save failed
		}

		failed, err := readGroup(conn.SendBatch(ctx, &b), steps, group, multi)
		switch {
		case errors.Is(err, errLockBusy):
			return false, err
		case err != nil:
			fail(err)
			return false, nil
		case failed >= 0:
			next = failed + 1
			continue
		}
		break
	}
	for _, s := range group {
		if s.err != nil {
			continue
		}
		switch {
		case s.track != nil && len(s.ids) == 0:
			// The upsert gates the insert: a position that does not
			// advance wrote neither.
			s.ids, s.err = nil, sqlrows.TrackingNotAdvanced(*s.track)
		case len(s.ids) != len(s.events):
			s.ids, s.err = nil, recorder.Errorf(recorder.ErrInternal, "insert events", "%d events inserted, %d ids returned", len(s.events), len(s.ids))
		default:
			committed = true
		}
	}
	return committed, nil
}

// readGroup reads a group pipeline's results in order. An INSERT that fails in
// a group of several fails its save alone: readGroup returns its index, and
// the transaction waits at the failed statement for ROLLBACK TO SAVEPOINT. A
// busy lock is errLockBusy; any other failure is returned as err, for the
// whole group.
func readGroup(br pgx.BatchResults, steps []step, group []*save, multi bool) (failed int, err error) {
	defer func() {
		// After a failure the server skipped the rest; Close reads past it.
		if cerr := br.Close(); err == nil && failed < 0 {
			err = cerr
		}
	}()
	for _, st := range steps {
		switch st.kind {
		case stepExec, stepLock:
			if _, err := br.Exec(); err != nil {
				var pe *pgconn.PgError
				if st.kind == stepLock && errors.As(err, &pe) && pe.Code == "55P03" { // lock_not_available
					return -1, errLockBusy
				}
				return -1, err
			}
		case stepInsert:
			ids, err := readIDs(br, len(group[st.save].events))
			if err != nil {
				if !multi {
					return -1, err
				}
				group[st.save].err = err
				return st.save, nil
			}
			group[st.save].ids = ids
		}
	}
	return -1, nil
}

// readIDs reads the notification ids an INSERT ... RETURNING returns, in order.
func readIDs(br pgx.BatchResults, n int) ([]int64, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := make([]int64, 0, n)
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

// The names of a group's prepared statements; see prepare.
const (
	stmtBegin          = "es_begin"
	stmtLockNowait     = "es_lock_nowait"
	stmtSavepoint      = "es_savepoint"
	stmtInsert         = "es_insert"
	stmtInsertTracking = "es_insert_tracking"
	stmtInsertOne      = "es_insert_one"
	stmtInsertOneTrack = "es_insert_one_tracking"
	stmtRelease        = "es_release"
	stmtRollbackTo     = "es_rollback_to"
	stmtNotify         = "es_notify"
	stmtCommit         = "es_commit"
	stmtRollback       = "es_rollback"
)

type namedStatement struct{ name, sql string }

// groupStatements returns the statements of f's groups.
func groupStatements(f *Factory, idCast string) []namedStatement {
	return []namedStatement{
		{stmtBegin, "BEGIN"},
		{stmtLockNowait, "LOCK TABLE " + f.events + " IN EXCLUSIVE MODE NOWAIT"},
		{stmtSavepoint, "SAVEPOINT s"},
		{stmtInsert, insertSQL(f.events, idCast, true, false, f.traced, f.tracking)},
		{stmtInsertTracking, insertSQL(f.events, idCast, true, true, f.traced, f.tracking)},
		{stmtInsertOne, insertOneSQL(f.events, idCast, false, f.traced, f.tracking)},
		{stmtInsertOneTrack, insertOneSQL(f.events, idCast, true, f.traced, f.tracking)},
		{stmtRelease, "RELEASE SAVEPOINT s"},
		{stmtRollbackTo, "ROLLBACK TO SAVEPOINT s"},
		{stmtNotify, "NOTIFY " + f.channel},
		{stmtCommit, "COMMIT"},
		{stmtRollback, "ROLLBACK"},
	}
}
