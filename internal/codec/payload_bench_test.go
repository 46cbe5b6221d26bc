package codec

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

type (
	benchRegistered struct{ Name string }
	benchTrickAdded struct{ Trick string }
)

// benchStates returns a registry and the states of a dog's history: its
// registration, then n-1 tricks.
func benchStates(b *testing.B, n int) (*Registry, []*Type, [][]byte) {
	r := New()
	for _, x := range []struct {
		rt    reflect.Type
		topic string
	}{{reflect.TypeFor[benchRegistered](), "dogschool:Dog.Registered"}, {reflect.TypeFor[benchTrickAdded](), "dogschool:Dog.TrickAdded"}} {
		if err := r.Register(x.rt, x.topic, nil, nil, false); err != nil {
			b.Fatal(err)
		}
	}
	reg, _ := r.ByTopic("dogschool:Dog.Registered")
	trick, _ := r.ByTopic("dogschool:Dog.TrickAdded")
	at := time.Date(2026, 11, 28, 11, 55, 0, 385840000, time.UTC)
	types := []*Type{reg}
	first, err := r.AppendEvent(nil, reg, at, "dogschool:Dog", benchRegistered{Name: "Fido"})
	if err != nil {
		b.Fatal(err)
	}
	states := [][]byte{first}
	for i := 1; i < n; i++ {
		s, err := r.AppendEvent(nil, trick, at.Add(time.Duration(i)*time.Second), "", benchTrickAdded{Trick: fmt.Sprint("trick ", i)})
		if err != nil {
			b.Fatal(err)
		}
		types, states = append(types, trick), append(states, s)
	}
	return r, types, states
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
		r, types, states := benchStates(b, 10)
		boxInPlace = true
		payloads := make([]any, len(states))
		b.Run("replay/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rd := r.Reader()
				for i, s := range states {
					if i == 0 || types[i] != types[i-1] {
						n := 1
						for i+n < len(types) && types[i+n] == types[i] {
							n++
						}
						rd.Start(types[i], n)
					}
					_, _, p, err := rd.Read(s, i == 0 || i == len(states)-1)
					if err != nil {
						b.Fatal(err)
					}
					payloads[i] = p
				}
			}
			benchSink = payloads
		})
		b.Run("page/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for i, s := range states {
					_, _, p, err := r.DecodeEvent(s, types[i])
					if err != nil {
						b.Fatal(err)
					}
					payloads[i] = p
				}
			}
			benchSink = payloads
		})
	}
}
