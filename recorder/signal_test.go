package recorder_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestSignal(t *testing.T) {
	var s recorder.Signal // the zero value is ready
	s.Notify()            // with no one waiting: nothing to do, no panic

	a, b := s.Wait(), s.Wait()
	assert.Equal(t, a, b, "waiters before one Notify share a channel")
	assert.False(t, closed(a))
	s.Notify()
	assert.True(t, closed(a), "Notify wakes every waiter")
	assert.True(t, closed(b))

	c := s.Wait()
	assert.False(t, closed(c), "a Wait after Notify waits for the next one")
	s.Notify()
	s.Notify()
	assert.True(t, closed(c))
}

func TestSignalNoLostWakeUp(t *testing.T) {
	var s recorder.Signal
	var mu sync.Mutex
	version := 0
	var wg sync.WaitGroup
	// Each waiter takes the channel, checks the state, then blocks: the pattern
	// recorders use. Every waiter must end, whatever the interleaving.
	for range 20 {
		wg.Go(func() {
			for {
				ch := s.Wait()
				mu.Lock()
				done := version >= 100
				mu.Unlock()
				if done {
					return
				}
				<-ch
			}
		})
	}
	for range 100 {
		mu.Lock()
		version++
		mu.Unlock()
		s.Notify()
	}
	wg.Wait()
}
