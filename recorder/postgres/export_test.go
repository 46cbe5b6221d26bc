package postgres

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
