package codec

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/internal/seal"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

type (
	benchRegistered struct{ Name string }
	benchTrickAdded struct{ Trick string }
)

// benchStates returns a registry and the stored events of a dog's history: its
// registration, then n-1 tricks.
func benchStates(b *testing.B, n int) (*Registry, []recorder.StoredEvent) {
	r := New()
	for _, x := range []struct {
		rt    reflect.Type
		topic string
	}{{reflect.TypeFor[benchRegistered](), "dogschool:Dog.Registered"}, {reflect.TypeFor[benchTrickAdded](), "dogschool:Dog.TrickAdded"}} {
		if err := r.Register(x.rt, x.topic, nil, nil, false); err != nil {
			b.Fatal(err)
		}
	}
	at := time.Date(2026, 11, 28, 11, 55, 0, 385840000, time.UTC)
	oid := uuid.NewSHA1(uuid.NameSpaceURL, []byte("/dogs/fido")).String()
	var stored []recorder.StoredEvent
	for i := range n {
		var (
			topic   string
			payload any = benchTrickAdded{Trick: fmt.Sprint("trick ", i)}
		)
		if i == 0 {
			topic, payload = "dogschool:Dog", benchRegistered{Name: "Fido"}
		}
		s, _, err := r.AppendStored(nil, seal.Pipeline{}, oid, int64(i+1), at.Add(time.Duration(i)*time.Second), topic, payload)
		if err != nil {
			b.Fatal(err)
		}
		stored = append(stored, s)
	}
	return r, stored
}

var benchSink []any

// BenchmarkPayloadBoxing decodes event payloads with payloads boxed in
// place (inplace) and copied when boxed (copy): replay reads a 10-event
// history through one Reader, as the repository replays an aggregate; page
// decodes 10 events one by one with DecodeEvent, as a notification page is
// decoded.
func BenchmarkPayloadBoxing(b *testing.B) {
	for _, mode := range []struct {
		name    string
		inPlace bool
	}{{"inplace", true}, {"copy", false}} {
		boxInPlace = mode.inPlace
		r, stored := benchStates(b, 10)
		boxInPlace = true
		payloads := make([]any, len(stored))
		b.Run("replay/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			var d Decoded
			for b.Loop() {
				rd := r.Reader(seal.Pipeline{}, stored[0].OriginatorID, uuid.MustParse(stored[0].OriginatorID))
				for i := range stored {
					if err := rd.ReadAt(stored, i, i == 0 || i == len(stored)-1, &d); err != nil {
						b.Fatal(err)
					}
					payloads[i] = d.Data
				}
			}
			benchSink = payloads
		})
		b.Run("page/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for i := range stored {
					d, err := r.DecodeStored(seal.Pipeline{}, &stored[i])
					if err != nil {
						b.Fatal(err)
					}
					payloads[i] = d.Data
				}
			}
			benchSink = payloads
		})
	}
}
