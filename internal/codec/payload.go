package codec

import (
	"reflect"
	"unsafe"
)

// Decoded event payloads reach the aggregate's Apply as an interface. Boxing
// a struct value into an interface copies it into a fresh allocation of its
// own (unless the type is pointer-shaped), which made it one allocation per
// event, on top of the value decoded into. A payload arena instead decodes a
// run of events straight into one slice and boxes each element in place:
// the interface points at the element, so a run of n events costs one
// allocation instead of n.
//
// An interface's data word pointing into a slice is what the runtime makes
// of a boxed value, as long as the value is never written again: arena
// elements are decoded once, then handed out, and the arena never returns
// them again. The interface keeps the whole slice alive, which is why a run
// is carved into chunks of at most 16 events (see arenaSizes).
//
// What it earns, measured against copying each payload when it is boxed
// (BenchmarkPayloadBoxing, inplace against copy, eight interleaved runs of
// each on a shared 2-core machine, compared with benchstat): reading a
// 10-event history through one Reader, as a replay does, takes 3
// allocations instead of 13 and 1.34 µs instead of 1.64 µs (-18%); decoding
// the 10 events one by one with DecodeStored, as a page of notifications is
// decoded, 20 allocations instead of 30 and 2.30 µs instead of 2.64 µs
// (-13%).

// arenaSizes are the lengths of the arrays a run is carved into, each twice
// the one before; the largest bounds how many payloads share one allocation,
// and so how much an aggregate keeping one payload (its last event, say)
// keeps alive.
const arenaSizes = 5 // 1, 2, 4, 8, 16

// payloadType is what a registered type needs to box its values in place.
type payloadType struct {
	// arrays[i] is [1<<i]T. An array (reflect.New) is one allocation where a
	// slice (reflect.MakeSlice) is two: the elements and the header.
	arrays [arenaSizes]reflect.Type
	// typed is a boxed T: its type word is copied into every boxed element.
	typed any
	// indirect is whether an interface holds T through a pointer to a copy,
	// as it does for every T but the pointer-shaped ones; only those can be
	// boxed in place.
	indirect bool
	// empty is a zero-size T (an event without fields, such as
	// Incremented{}), addressable: all its values are one value, decoded
	// into and boxed as typed without making any.
	empty reflect.Value
}

func newPayloadType(rt reflect.Type) payloadType {
	typed := reflect.Zero(rt).Interface()
	// The zero value of a pointer-shaped type is held as a nil data word;
	// any other type is held through a (non-nil) pointer to its value.
	pt := payloadType{typed: typed, indirect: boxInPlace && eface(&typed).data != nil}
	for i := range pt.arrays {
		pt.arrays[i] = reflect.ArrayOf(1<<i, rt)
	}
	if rt.Size() == 0 {
		pt.empty = reflect.New(rt).Elem()
	}
	return pt
}

// boxInPlace is whether payloads are boxed in place; without it each is
// copied into an allocation of its own when boxed, as reflect.Value.Interface
// does. Only benchmarks turn it off, to measure what boxing in place earns.
var boxInPlace = true

// efaceWords is the runtime's layout of an interface without methods.
type efaceWords struct {
	typ, data unsafe.Pointer
}

func eface(x *any) *efaceWords { return (*efaceWords)(unsafe.Pointer(x)) }

// payloadArena hands out zeroed payload values of one type, addressable so
// that the decoder can fill them, and boxes them in place.
type payloadArena struct {
	pt    *payloadType
	chunk reflect.Value // [n]T, handed out up to used
	used  int
	left  int // events still expected, to size the next chunk
}

// newPayloadArena returns an arena for n events of ti's type.
func newPayloadArena(ti *Type, n int) payloadArena {
	return payloadArena{pt: &ti.payloads, left: n}
}

// next returns a zero T to decode an event into.
func (p *payloadArena) next() reflect.Value {
	if p.pt.empty.IsValid() {
		return p.pt.empty
	}
	if !p.pt.indirect {
		// Boxing copies the value's one word: one element, reused.
		if !p.chunk.IsValid() {
			p.chunk = reflect.New(p.pt.arrays[0]).Elem()
		}
		return p.chunk.Index(0)
	}
	if !p.chunk.IsValid() || p.used == p.chunk.Len() {
		// The smallest array that holds the events left, or the largest.
		i := 0
		for i < arenaSizes-1 && 1<<i < p.left {
			i++
		}
		p.chunk, p.used = reflect.New(p.pt.arrays[i]).Elem(), 0
	}
	p.left--
	p.used++
	return p.chunk.Index(p.used - 1)
}

// box returns v, which next returned and the decoder filled, as an interface.
// v must not be changed afterwards.
func (p *payloadArena) box(v reflect.Value) any {
	if p.pt.empty.IsValid() {
		return p.pt.typed
	}
	if !p.pt.indirect {
		x := v.Interface()
		v.SetZero() // reused by next
		return x
	}
	x := p.pt.typed
	// UnsafeAddr, not Addr: Addr finds the pointer type of T, a lookup per event.
	eface(&x).data = unsafe.Pointer(v.UnsafeAddr())
	return x
}
