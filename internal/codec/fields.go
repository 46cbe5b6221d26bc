package codec

import (
	"fmt"
	"reflect"
	"strconv"
	"time"
	"unsafe"

	"github.com/google/uuid"
)

// structCodec is a struct type's field plan with each field's encoder and
// decoder resolved for one Types, so that encoding or decoding a struct does
// no cache lookup per field. Codecs live in Types.codecs, which
// RegisterTranscoding clears together with the encoders and decoders.
type structCodec struct {
	plan   *structPlan
	fields []fieldCodec
}

type fieldCodec struct {
	*fieldInfo
	kind inlineKind // how the decoder reads the field without calling dec
	enc  encodeFunc
	dec  decodeFunc
}

// inlineKind names the field types that event payloads mostly hold; the
// decoder reads them in place (see decoder.inline) instead of calling the
// field's decoder through a func value, which costs a call per field and
// makes the decoder escape to the heap.
type inlineKind uint8

const (
	inlineNone inlineKind = iota
	inlineString
	inlineInt
	inlineUint
	inlineBool
	inlineTime
	inlineUUID
)

func (t *Registry) codecOf(rt reflect.Type) *structCodec {
	if c, ok := t.codecs.Load(rt); ok {
		return c.(*structCodec)
	}
	plan := fieldsOf(rt)
	c := &structCodec{plan: plan, fields: make([]fieldCodec, len(plan.fields))}
	for i := range plan.fields {
		f := &plan.fields[i]
		// Resolving the field codecs here does not recurse into rt: a struct
		// cannot hold itself by value, and pointers, slices and maps resolve
		// their element codecs when first used.
		c.fields[i] = fieldCodec{fieldInfo: f, kind: t.inlineKindOf(f.typ), enc: t.encoderFor(f.typ), dec: t.decoderFor(f.typ)}
	}
	actual, _ := t.codecs.LoadOrStore(rt, c)
	return actual.(*structCodec)
}

func (t *Registry) inlineKindOf(rt reflect.Type) inlineKind {
	if t.transcodingFor(rt) != nil {
		return inlineNone
	}
	switch rt {
	case timeType:
		return inlineTime
	case uuidType:
		return inlineUUID
	case decimalType:
		return inlineNone
	}
	switch rt.Kind() {
	case reflect.String:
		return inlineString
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return inlineInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return inlineUint
	case reflect.Bool:
		return inlineBool
	}
	return inlineNone
}

// field returns the index of the field stored under key, or -1. Keys mostly
// come in the order the encoder writes them, so the field after the previous
// one (next) is tried before the map.
func (c *structCodec) field(key []byte, next int) int {
	if next < len(c.fields) && c.fields[next].name == string(key) {
		return next
	}
	if i, ok := c.plan.byName[string(key)]; ok {
		return i
	}
	return -1
}

// member reads the value of the member key into the matching field of v, or
// skips it when no field matches. next is the index after the field read
// before, and member returns it updated.
func (d *decoder) member(c *structCodec, v reflect.Value, key []byte, next int) (int, error) {
	i := c.field(key, next)
	if i < 0 {
		return next, d.skip()
	}
	return d.fieldValue(c, v, i)
}

// nextField reads the member of field next into v when it comes next, with
// its key exactly as the encoder writes it, which is the usual case: then
// the key is neither scanned nor looked up. ok is false when nothing was
// read and the member is to be read by key and member.
func (d *decoder) nextField(c *structCodec, v reflect.Value, next int) (n int, ok bool, err error) {
	if next >= len(c.fields) {
		return next, false, nil
	}
	key := c.fields[next].key
	d.ws()
	if len(d.data)-d.pos < len(key) || string(d.data[d.pos:d.pos+len(key)]) != string(key) {
		return next, false, nil
	}
	d.pos += len(key)
	n, err = d.fieldValue(c, v, next)
	return n, true, err
}

// fieldValue reads the value of field i into v, and returns the index of
// the field expected next.
func (d *decoder) fieldValue(c *structCodec, v reflect.Value, i int) (int, error) {
	f := &c.fields[i]
	fv := v.FieldByIndex(f.index)
	ok, err := d.inline(f, fv)
	if !ok {
		h := d.onHeap()
		h.pos = d.pos
		err = f.dec(h, fv)
		d.pos = h.pos
	}
	if err != nil {
		return i + 1, fmt.Errorf("field %q: %w", f.name, err)
	}
	return i + 1, nil
}

// onHeap returns a decoder on the heap reading the same input, for calling
// a field's decodeFunc: passing a decoder to a func value makes it escape,
// and the hot paths keep theirs on the stack. It is allocated once per
// top-level decode, and only when some field needs it; a decoder on the heap
// is its own.
func (d *decoder) onHeap() *decoder {
	if d.heap == nil {
		// Without d.strs: strings read through field decoders are made
		// on their own.
		h := &decoder{t: d.t, data: d.data}
		h.heap = h
		d.heap = h
	}
	return d.heap
}

// inline reads the value of f into fv when f is of an inline kind and the
// value has its usual form (not null, say); ok is false when nothing was
// read and f.dec must read the value. It reads exactly what f.dec would.
func (d *decoder) inline(f *fieldCodec, fv reflect.Value) (ok bool, err error) {
	switch f.kind {
	case inlineString:
		if d.peek() != '"' {
			return false, nil
		}
		s, err := d.str()
		if err != nil {
			return true, err
		}
		fv.SetString(s)
		return true, nil
	case inlineInt:
		if c := d.peek(); c != '-' && (c < '0' || c > '9') {
			return false, nil
		}
		s, _, err := d.number()
		if err != nil {
			return true, err
		}
		n, err := strconv.ParseInt(string(s), 10, f.typ.Bits())
		if err != nil {
			return true, intError(f.typ, err)
		}
		fv.SetInt(n)
		return true, nil
	case inlineUint:
		if c := d.peek(); c < '0' || c > '9' {
			return false, nil
		}
		s, _, err := d.number()
		if err != nil {
			return true, err
		}
		n, err := strconv.ParseUint(string(s), 10, f.typ.Bits())
		if err != nil {
			return true, intError(f.typ, err)
		}
		fv.SetUint(n)
		return true, nil
	case inlineBool:
		switch {
		case d.peek() == 't' && d.literal("true"):
			fv.SetBool(true)
		case d.peek() == 'f' && d.literal("false"):
			fv.SetBool(false)
		default:
			return false, nil
		}
		return true, nil
	case inlineTime:
		if d.peek() != '{' {
			return false, nil
		}
		var t time.Time
		if err := d.timeValue(&t); err != nil {
			return true, err
		}
		set(fv, t)
		return true, nil
	case inlineUUID:
		if d.peek() != '{' {
			return false, nil
		}
		raw, _, err := d.tagged(TagUUID, true)
		if err != nil {
			return true, err
		}
		id, err := uuid.ParseBytes(raw)
		if err != nil {
			return true, uuidError(raw, err)
		}
		set(fv, id)
		return true, nil
	}
	return false, nil
}

// set stores x in fv, of type T, without boxing x when fv is addressable
// (and without Addr, which looks up the pointer type of T).
func set[T any](fv reflect.Value, x T) {
	if fv.CanAddr() {
		*(*T)(unsafe.Pointer(fv.UnsafeAddr())) = x
		return
	}
	fv.Set(reflect.ValueOf(x))
}

func intError(rt reflect.Type, err error) error { return fmt.Errorf("%s: %w", rt, err) }

func uuidError(raw []byte, err error) error { return fmt.Errorf("%s %q: %w", TagUUID, raw, err) }
