package eventsourcing_test

import (
	"bytes"
	"errors"
	"testing"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// fuzzKey is a fixed AES-256 key, so that a sealed seed stays valid.
var fuzzKey = bytes.Repeat([]byte{0x5a}, 32)

// fuzzMapper returns the DogSchool mapper for a pipeline: bit 0 of mode
// compresses, bit 1 encrypts.
func fuzzMapper(t testing.TB, mode uint8) *es.Mapper {
	var opts []es.MapperOption
	if mode&1 != 0 {
		opts = append(opts, es.WithCompressor(es.Zlib{}))
	}
	if mode&2 != 0 {
		c, err := es.NewAESCipher(fuzzKey)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, es.WithCipher(c))
	}
	return es.NewMapper(dogTypes(), opts...)
}

// FuzzMapperToEvent decodes arbitrary stored events through every pipeline
// (plain, zlib, AES-GCM, both): the mapper returns an error wrapping
// ErrDeserialisation, never panics, and what it decodes encodes again.
func FuzzMapperToEvent(f *testing.F) {
	id := es.NameID("/fuzz").String()
	f.Add(uint8(0), id, "dogschool:Dog.Registered", []byte(`{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-28T11:55:00.385840+00:00"},"originator_topic":"dogschool:Dog","name":"Fido"}`))
	f.Add(uint8(0), id, "dogschool:Dog.TrickAdded", []byte(`{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-28T11:55:00+00:00"},"trick":"roll over"}`))
	f.Add(uint8(1), id, "dogschool:Dog.Registered", []byte("x\x9c\xab\xae\x05\x00\x01u\x00\xf9"))
	f.Add(uint8(2), id, "dogschool:Dog.Registered", bytes.Repeat([]byte{1}, 40))
	f.Add(uint8(3), "not-a-uuid", "no:Such", []byte{})
	f.Fuzz(func(t *testing.T, mode uint8, originator, topic string, state []byte) {
		m := fuzzMapper(t, mode)
		s := recorder.StoredEvent{OriginatorID: originator, OriginatorVersion: 1, Topic: topic, State: state}
		e, err := m.ToEvent(s)
		if err != nil {
			if !errors.Is(err, es.ErrDeserialisation) {
				t.Fatalf("error does not wrap ErrDeserialisation: %v", err)
			}
			return
		}
		if mode&2 != 0 {
			t.Fatalf("AES-GCM accepted a state it did not seal: %x", state)
		}
		if _, err := m.FromEvent(e); err != nil {
			t.Logf("decoded event does not encode again: %v", err)
		}
	})
}

// FuzzMapperTampered seals a real event, then flips bits, truncates or
// extends what is stored: with a cipher every change is an error.
func FuzzMapperTampered(f *testing.F) {
	f.Add(uint8(2), uint16(0), uint8(1), uint16(0), []byte(nil))
	f.Add(uint8(3), uint16(12), uint8(0x80), uint16(0), []byte(nil))
	f.Add(uint8(2), uint16(30), uint8(0), uint16(3), []byte(nil))
	f.Add(uint8(3), uint16(0), uint8(0), uint16(0), []byte("tail"))
	f.Fuzz(func(t *testing.T, mode uint8, pos uint16, xor uint8, cut uint16, tail []byte) {
		mode |= 2
		m := fuzzMapper(t, mode)
		event := es.Event{OriginatorID: es.NameID("/fuzz"), OriginatorVersion: 1, Timestamp: fidoTime, OriginatorTopic: "dogschool:Dog", Data: Registered{Name: "Fido"}}
		s, err := m.FromEvent(event)
		if err != nil {
			t.Fatal(err)
		}
		orig := s.State
		state := bytes.Clone(orig)
		if len(state) > 0 {
			state[int(pos)%len(state)] ^= xor
		}
		state = state[:len(state)-int(cut)%(len(state)+1)]
		s.State = append(state, tail...)
		_, err = m.ToEvent(s)
		if bytes.Equal(s.State, orig) {
			if err != nil {
				t.Fatalf("untouched state: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("tampered state decoded: pos %d xor %#x cut %d tail %x", pos, xor, cut, tail)
		}
		if err != nil && !errors.Is(err, es.ErrDeserialisation) {
			t.Fatalf("error does not wrap ErrDeserialisation: %v", err)
		}
	})
}
