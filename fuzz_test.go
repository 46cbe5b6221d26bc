package eventsourcing_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

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

// fuzzValue is a value built from fuzz input, of the kinds the codec writes.
type fuzzValue struct {
	ID     uuid.UUID
	Amount decimal.Decimal
	At     time.Time
	Text   string
	N      int64
	U      uint64
	Small  int8
	F      float64
	Bytes  []byte
	Ptr    *int64
	List   []string
	Tags   map[string]string
	Nested struct{ Name string }
}

// FuzzCodecRoundTrip encodes values built from fuzz input and decodes them:
// what the JSON codec writes it reads back unchanged.
func FuzzCodecRoundTrip(f *testing.F) {
	f.Add("Fido", int64(-3), uint64(math.MaxUint64), int8(-8), 1.5, []byte{0, 255}, int64(150), int32(-2), int64(1764330900385840000), "k")
	f.Add("quote \" backslash \\ nul \x00 é ✓ 😀 <&>\u2028", int64(math.MinInt64), uint64(0), int8(127), math.Copysign(0, -1), []byte(nil), int64(0), int32(0), int64(0), "")
	f.Add("", int64(1), uint64(1), int8(0), 1e300, []byte("x"), int64(-1), int32(-30), int64(-1), "\t")
	f.Fuzz(func(t *testing.T, text string, n int64, u uint64, small int8, fl float64, b []byte, coef int64, exp int32, nanos int64, key string) {
		if math.IsNaN(fl) || math.IsInf(fl, 0) {
			return // JSON has no such numbers
		}
		text, key = strings.ToValidUTF8(text, "\uFFFD"), strings.ToValidUTF8(key, "\uFFFD")
		v := fuzzValue{
			ID:     uuid.NewSHA1(uuid.NameSpaceOID, []byte(text)),
			Amount: decimal.New(coef, exp%40),
			At:     time.Unix(0, nanos).UTC(),
			Text:   text, N: n, U: u, Small: small, F: fl, Bytes: b,
			Ptr:  &n,
			List: []string{text, key},
			Tags: map[string]string{key: text},
		}
		v.Nested.Name = key
		types := es.NewTypes()
		data, err := types.Encode(v)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		var got fuzzValue
		if err := types.Decode(data, &got); err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if !got.At.Equal(v.At) || !got.Amount.Equal(v.Amount) {
			t.Fatalf("time or decimal changed: %v %v, got %v %v", v.At, v.Amount, got.At, got.Amount)
		}
		got.At, v.At, got.Amount, v.Amount = time.Time{}, time.Time{}, decimal.Decimal{}, decimal.Decimal{}
		if len(v.Bytes) == 0 && len(got.Bytes) == 0 {
			got.Bytes, v.Bytes = nil, nil
		}
		if got.ID != v.ID || got.Text != v.Text || got.N != v.N || got.U != v.U || got.Small != v.Small ||
			got.F != v.F || !bytes.Equal(got.Bytes, v.Bytes) || got.Ptr == nil || *got.Ptr != *v.Ptr ||
			len(got.List) != 2 || got.List[0] != text || got.List[1] != key || got.Tags[key] != text || len(got.Tags) != 1 ||
			got.Nested != v.Nested {
			t.Fatalf("round trip changed the value:\n%s\nwant %+v\ngot  %+v", data, v, got)
		}
	})
}

// FuzzCodecDecode decodes arbitrary bytes into a struct of every kind the
// codec knows, and into an interface: an error or a value, never a panic;
// what decodes into an interface encodes again.
func FuzzCodecDecode(f *testing.F) {
	f.Add([]byte(`{"id":{"_type_":"uuid_hex","_data_":"00000000000000000000000000000001"},"amount":{"_type_":"decimal_str","_data_":"1.50"},"at":{"_type_":"datetime_iso","_data_":"2026-11-28T11:55:00.385840+00:00"}}`))
	f.Add([]byte(`{"items":[{"amount":{"_type_":"decimal_str","_data_":"-0.001"},"currency":"EUR"}],"tags":{"a":{"_type_":"uuid_hex","_data_":"0123456789abcdef0123456789abcdef"}},"any":{"n":1,"l":[true,null,"s",1.5e3]}}`))
	f.Add([]byte(`{"text":"\u00e9\ud83d\ude00\\\"","fixed":[1,2],"bytes":"AP8=","small":-8,"big":18446744073709551615,"whole":2.0}`))
	f.Add([]byte(`[[[[[[[[[[]]]]]]]]]]`))
	f.Add([]byte(`{"local":{"_type_":"datetime_iso","_data_":"2020-01-02T03:04:05.123456789+05:30"},"maybe_amt":null,"nested":{"when":{"_type_":"datetime_iso","_data_":"0001-01-01T00:00:00"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		types := es.NewTypes()
		var v Everything
		_ = types.Decode(data, &v)
		var a any
		if err := types.Decode(data, &a); err == nil {
			if _, err := types.Encode(a); err != nil {
				t.Logf("decoded value does not encode again: %v", err)
			}
		}
		var m map[string]any
		_ = types.Decode(data, &m)
	})
}
