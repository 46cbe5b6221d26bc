package recorder

import "sync"

// Signal is a broadcast "something changed" notice: every goroutine that took the
// channel from Wait before Notify sees it closed. Recorders use one to wake
// subscribers and waiters after a commit, with no goroutine and no lost wake-up
// (take the channel, then check the store, then block on the channel).
type Signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// Wait returns a channel that is closed by the next Notify.
func (s *Signal) Wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Notify wakes everyone waiting.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}
