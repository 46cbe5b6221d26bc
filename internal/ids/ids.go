// Package ids makes the random ids of new aggregates (eventsourcing.NewID).
package ids

import (
	"crypto/rand"
	"sync"

	"github.com/google/uuid"
)

// New returns a random (version 4) id, from the operating system's
// cryptographic random source as uuid.New's are. The random bytes are read
// 64 ids at a time: one read per id (a system call, and an allocation for the
// buffer) was the largest cost of creating an aggregate.
func New() uuid.UUID {
	idPool.Lock()
	if idPool.used == len(idPool.buf) {
		// crypto/rand.Read does not fail (it crashes the program instead).
		_, _ = rand.Read(idPool.buf[:])
		idPool.used = 0
	}
	var id uuid.UUID
	copy(id[:], idPool.buf[idPool.used:])
	clear(idPool.buf[idPool.used : idPool.used+len(id)]) // each id's bytes are handed out once
	idPool.used += len(id)
	idPool.Unlock()
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}

// idPool holds random bytes for New.
var idPool = struct {
	sync.Mutex
	buf  [64 * 16]byte
	used int
}{used: 64 * 16}
