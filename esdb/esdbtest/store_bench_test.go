package esdbtest

import (
	"encoding/binary"
	"testing"
)

// BenchmarkStoreAppend100 measures the store's share of an append of 100
// events to one growing stream, without gRPC or a client.
func BenchmarkStoreAppend100(b *testing.B) {
	s := newStore()
	events := make([]proposed, 100)
	for i := range events {
		events[i] = proposed{Type: "TestEvent", ContentType: contentTypeBinary, Data: make([]byte, 100), Meta: []byte{}}
	}
	var next uint64
	for b.Loop() {
		// Fresh, distinct ids, cheaper to make than random ones.
		for i := range events {
			next++
			binary.BigEndian.PutUint64(events[i].ID[:8], next)
			binary.BigEndian.PutUint64(events[i].ID[8:], next*0x9e3779b97f4a7c15)
		}
		if _, err := s.append("test-stream", expectation{kind: expectAny}, events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}
