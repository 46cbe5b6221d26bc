package esdbtest

import (
	"encoding/binary"
	"testing"

	"github.com/google/uuid"
)

// TestIDIndex checks the id index against a map through several growths,
// with re-added ids (the latest revision wins) and absent ids.
func TestIDIndex(t *testing.T) {
	id := func(i int) uuid.UUID {
		var u uuid.UUID
		binary.BigEndian.PutUint64(u[8:], uint64(i))
		return u
	}
	var log []uuid.UUID
	idAt := func(rev uint64) uuid.UUID { return log[rev] }
	var x idIndex
	want := map[uuid.UUID]uint64{}
	for i := range 5000 {
		u := id(i)
		if i%7 == 3 {
			u = id(i / 2) // an id seen before
		}
		rev := uint64(len(log))
		log = append(log, u)
		x.add(u, rev)
		want[u] = rev
	}
	for i := range 6000 {
		u := id(i)
		rev, ok := x.get(u, idAt)
		w, wok := want[u]
		if ok != wok || rev != w {
			t.Fatalf("get(%d) = %d, %v; want %d, %v", i, rev, ok, w, wok)
		}
	}
	if len(x.buckets) < 16 {
		t.Fatalf("%d buckets: the index did not grow", len(x.buckets))
	}
}
