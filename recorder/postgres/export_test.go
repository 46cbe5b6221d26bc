package postgres

import "github.com/jackc/pgx/v5/pgxpool"

// ListenerPID returns the backend pid of the factory's LISTEN connection
// (0 when not connected), so tests can kill it.
func ListenerPID(f *Factory) uint32 {
	f.listenMu.Lock()
	defer f.listenMu.Unlock()
	if f.listener == nil {
		return 0
	}
	return f.listener.pid.Load()
}

// QueueLen returns the number of saves queued for the factory's next group.
func QueueLen(f *Factory) int {
	f.committer.mu.Lock()
	defer f.committer.mu.Unlock()
	return len(f.committer.queue)
}

// HoldTurn takes the committer's turn, as a running group does, so that saves
// queue up behind it; release gives it back, and the queued saves then run as
// one group.
func HoldTurn(f *Factory) (release func()) {
	f.committer.turn <- struct{}{}
	return func() { <-f.committer.turn }
}

// Pool returns the factory's connection pool, so that a benchmark's raw
// statements run on the same connections, with the same settings, as the
// recorder's.
func Pool(f *Factory) *pgxpool.Pool { return f.pool }
