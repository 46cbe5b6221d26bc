package codec

import (
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
)

// decoder reads JSON straight into Go values.
type decoder struct {
	t    *Registry
	data []byte
	pos  int
	heap *decoder    // see onHeap
	strs stringArena // where decoded strings are made when on (see stringArena)
}

// stringArena makes the strings a replay decodes out of shared chunks, one
// allocation for many short strings (a dog's name and tricks) instead of one
// each. A chunk is written once, where each string is carved from it, and
// never again, so the strings never change; a string keeps its chunk alive,
// which bounds what an aggregate holding one string keeps to a chunk. It is
// passed by value (a decoder holds it, and gives it back when done), since a
// pointer to it would make the replay's arena escape to the heap.
type stringArena struct {
	on    bool
	chunk []byte
}

// A stringArena's first chunk is stringChunkFirst bytes, and each next one
// twice the one before, up to stringChunk: a replay with one short string (a
// counter's name) takes little more than the string. Strings longer than a
// quarter of the largest chunk are made on their own.
const (
	stringChunkFirst = 128
	stringChunk      = 256
)

// make returns b as a string.
func (a *stringArena) make(b []byte) string {
	n := len(b)
	if n == 0 {
		return ""
	}
	if n > stringChunk/4 {
		return string(b)
	}
	if cap(a.chunk)-len(a.chunk) < n {
		size := min(max(2*cap(a.chunk), stringChunkFirst), stringChunk)
		a.chunk = make([]byte, 0, max(size, n))
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return unsafe.String(&a.chunk[start], n)
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: %s", d.pos, fmt.Sprintf(format, args...))
}

func (d *decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next significant byte (0 at the end).
func (d *decoder) peek() byte {
	d.ws()
	if d.pos >= len(d.data) {
		return 0
	}
	return d.data[d.pos]
}

func (d *decoder) expect(c byte) error {
	if d.peek() != c {
		return d.errorf("want %q", c)
	}
	d.pos++
	return nil
}

// end checks that nothing but white space follows.
func (d *decoder) end() error {
	if d.peek() != 0 {
		return d.errorf("trailing data")
	}
	return nil
}

// literal consumes word (true, false, null).
func (d *decoder) literal(word string) bool {
	if len(d.data)-d.pos >= len(word) && string(d.data[d.pos:d.pos+len(word)]) == word {
		d.pos += len(word)
		return true
	}
	return false
}

// null consumes a null if one is next.
func (d *decoder) null() bool {
	return d.peek() == 'n' && d.literal("null")
}

// object calls fn for each key with the decoder positioned at the value; fn
// must consume the value. The key aliases the input (or a scratch buffer) and
// is valid only during the call: comparing it with string(key) or using it in
// a map index does not allocate.
func (d *decoder) object(fn func(key []byte) error) error {
	more, err := d.openObject()
	for more && err == nil {
		var key []byte
		if key, err = d.key(); err != nil {
			return err
		}
		if err = fn(key); err != nil {
			return err
		}
		more, err = d.nextMember()
	}
	return err
}

// openObject, key and nextMember are object without a callback, for the hot
// paths (events, structs, tagged values):
//
//	more, err := d.openObject()
//	for more && err == nil {
//		key, err := d.key() … read the value …
//		more, err = d.nextMember()
//	}
//
// openObject consumes '{' and reports whether a member follows.
func (d *decoder) openObject() (bool, error) {
	if err := d.expect('{'); err != nil {
		return false, err
	}
	if d.peek() == '}' {
		d.pos++
		return false, nil
	}
	return true, nil
}

// key reads a member's key and the colon after it; the key is valid as
// object's is.
func (d *decoder) key() ([]byte, error) {
	key, err := d.strBytes()
	if err != nil {
		return nil, err
	}
	if err := d.expect(':'); err != nil {
		return nil, err
	}
	return key, nil
}

// nextMember consumes the ',' or '}' after a member's value and reports
// whether another member follows.
func (d *decoder) nextMember() (bool, error) {
	switch d.peek() {
	case ',':
		d.pos++
		return true, nil
	case '}':
		d.pos++
		return false, nil
	}
	return false, d.errorf("want ',' or '}'")
}

// array calls fn for each element.
func (d *decoder) array(fn func() error) error {
	if err := d.expect('['); err != nil {
		return err
	}
	if d.peek() == ']' {
		d.pos++
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return nil
		default:
			return d.errorf("want ',' or ']'")
		}
	}
}

// str reads a string.
func (d *decoder) str() (string, error) {
	b, err := d.strBytes()
	if d.strs.on && err == nil {
		return d.strs.make(b), nil
	}
	return string(b), err
}

// strBytes reads a string without copying it when it has no escapes.
func (d *decoder) strBytes() ([]byte, error) {
	if d.peek() != '"' {
		return nil, d.errorf("want a string")
	}
	d.pos++
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if c == '"' {
			b := d.data[start:d.pos]
			d.pos++
			return b, nil
		}
		if c == '\\' || c < 0x20 {
			s, err := d.strSlow(start)
			return []byte(s), err
		}
		d.pos++
	}
	return nil, d.errorf("unterminated string")
}

func (d *decoder) strSlow(start int) (string, error) {
	b := append([]byte(nil), d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(b), nil
		case c < 0x20:
			return "", d.errorf("control character in string")
		case c != '\\':
			b = append(b, c)
			d.pos++
			continue
		}
		d.pos++
		if d.pos >= len(d.data) {
			break
		}
		e := d.data[d.pos]
		d.pos++
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", d.errorf("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(utf8.RuneError)
				if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
					save := d.pos
					d.pos += 2
					if lo, ok := d.hex4(); ok {
						r2 = lo
					} else {
						d.pos = save
					}
				}
				r = utf16.DecodeRune(r, r2)
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", d.errorf("bad escape")
		}
	}
	return "", d.errorf("unterminated string")
}

func (d *decoder) hex4() (rune, bool) {
	if len(d.data)-d.pos < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.data[d.pos:d.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	d.pos += 4
	return rune(n), true
}

// number reads a number token, aliasing the input.
func (d *decoder) number() ([]byte, bool, error) {
	d.ws()
	start := d.pos
	isFloat := false
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if c >= '0' && c <= '9' || c == '-' || c == '+' {
			d.pos++
			continue
		}
		if c == '.' || c == 'e' || c == 'E' {
			isFloat = true
			d.pos++
			continue
		}
		break
	}
	if d.pos == start {
		return nil, false, d.errorf("want a number")
	}
	return d.data[start:d.pos], isFloat, nil
}

// skip consumes one value.
func (d *decoder) skip() error {
	switch c := d.peek(); c {
	case '{':
		return d.object(func([]byte) error { return d.skip() })
	case '[':
		return d.array(d.skip)
	case '"':
		_, err := d.str()
		return err
	case 't', 'f', 'n':
		if d.literal("true") || d.literal("false") || d.literal("null") {
			return nil
		}
		return d.errorf("bad literal")
	default:
		_, _, err := d.number()
		return err
	}
}

// any reads a value without a Go type: nil, bool, string, int64 or float64,
// []any, map[string]any, or the Go value of a tagged object.
func (d *decoder) any() (any, error) {
	switch c := d.peek(); c {
	case '{':
		m := map[string]any{}
		err := d.object(func(key []byte) error {
			v, err := d.any()
			m[string(key)] = v
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(m) == 2 {
			name, ok := m["_type_"].(string)
			data, hasData := m["_data_"]
			if ok && hasData {
				return d.t.untag(name, data)
			}
		}
		return m, nil
	case '[':
		s := []any{}
		err := d.array(func() error {
			v, err := d.any()
			s = append(s, v)
			return err
		})
		return s, err
	case '"':
		return d.str()
	case 't':
		if d.literal("true") {
			return true, nil
		}
	case 'f':
		if d.literal("false") {
			return false, nil
		}
	case 'n':
		if d.literal("null") {
			return nil, nil
		}
	default:
		b, isFloat, err := d.number()
		if err != nil {
			return nil, err
		}
		s := string(b)
		if !isFloat {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n, nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, d.errorf("bad number %q", s)
		}
		return f, nil
	}
	return nil, d.errorf("unexpected input")
}

// untag turns a tagged value read without a Go type into its Go value.
func (t *Registry) untag(name string, data any) (any, error) {
	switch name {
	case TagUUID, TagDecimal, TagDatetime:
		s, ok := data.(string)
		if !ok {
			return nil, fmt.Errorf("tagged %q: data is %T, want a string", name, data)
		}
		return parseBuiltin(name, s)
	}
	tc := t.transcodingNamed(name)
	if tc == nil {
		return nil, fmt.Errorf("%w: tag %q", ErrTranscodingNotRegistered, name)
	}
	v, err := tc.decode(data)
	if err != nil {
		return nil, fmt.Errorf("transcoding %q: %w", name, err)
	}
	return v.Interface(), nil
}

func parseBuiltin(name, s string) (any, error) {
	switch name {
	case TagUUID:
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("uuid_hex %q: %w", s, err)
		}
		return id, nil
	case TagDecimal:
		v, err := decimal.NewFromString(s)
		if err != nil {
			return nil, fmt.Errorf("decimal_str %q: %w", s, err)
		}
		return v, nil
	default:
		v, err := parseISO(s)
		if err != nil {
			return nil, fmt.Errorf("datetime_iso %q: %w", s, err)
		}
		return v, nil
	}
}

// tagged reads a tagged object whose _type_ must be name, returning _data_
// as raw bytes when builtin (a string, valid as object's keys are) and as a
// value without Go type otherwise (custom).
func (d *decoder) tagged(name string, builtin bool) (raw []byte, data any, err error) {
	if builtin {
		if raw, ok := d.canonicalTagged(name); ok {
			return raw, nil, nil
		}
	}
	var gotName, gotData bool
	more, err := d.openObject()
	for more && err == nil {
		var key []byte
		if key, err = d.key(); err != nil {
			break
		}
		switch string(key) {
		case "_type_":
			var s []byte
			if s, err = d.strBytes(); err == nil && string(s) != name {
				err = fmt.Errorf("tagged value of type %q where %q is expected", s, name)
			}
			gotName = true
		case "_data_":
			gotData = true
			if builtin {
				raw, err = d.strBytes()
			} else {
				data, err = d.any()
			}
		default:
			err = fmt.Errorf("unexpected key %q in tagged value %q", key, name)
		}
		if err == nil {
			more, err = d.nextMember()
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if !gotName || !gotData {
		return nil, nil, fmt.Errorf("tagged value %q lacks _type_ or _data_", name)
	}
	return raw, data, nil
}

// canonicalTagged reads {"_type_":"<name>","_data_":"<data>"} when it is
// written exactly so, as the encoder writes the built-in tags: every event
// has a timestamp, and matching its bytes is much cheaper than parsing an
// object. It returns data (aliasing the input), or false, having read
// nothing, when the input has another form, for tagged to read.
func (d *decoder) canonicalTagged(name string) ([]byte, bool) {
	const head, mid = `{"_type_":"`, `","_data_":"`
	d.ws()
	s := d.data[d.pos:]
	n := len(head) + len(name) + len(mid)
	if len(s) < n || string(s[:len(head)]) != head || string(s[len(head):len(head)+len(name)]) != name ||
		string(s[len(head)+len(name):n]) != mid {
		return nil, false
	}
	for i := n; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			if i+1 < len(s) && s[i+1] == '}' {
				d.pos += i + 2
				return s[n:i], true
			}
			return nil, false
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// timeValue reads a datetime_iso tagged value into *dst. With dst nil it
// only checks the value, as a replay does for the events between its first
// and its last: no aggregate keeps their timestamps.
func (d *decoder) timeValue(dst *time.Time) error {
	// Every event has a timestamp, written in canonical form: reading the
	// tag's head, then the date and time and `"}` in one pass is much cheaper
	// than finding the string's end first and parsing it after.
	const head = `{"_type_":"` + TagDatetime + `","_data_":"`
	d.ws()
	if s := d.data[d.pos:]; len(s) > len(head) && string(s[:len(head)]) == head {
		if n, ok := canonicalTimeData(s[len(head):], dst); ok {
			d.pos += len(head) + n
			return nil
		}
	}
	data, _, err := d.tagged(TagDatetime, true)
	if err != nil {
		return err
	}
	t, err := parseISOBytes(data)
	if err != nil {
		return fmt.Errorf("datetime_iso %q: %w", data, err)
	}
	if dst != nil {
		*dst = t
	}
	return nil
}

// leadingTimestamp reads the start of event state as the encoder writes it,
// `{"timestamp":{"_type_":"datetime_iso","_data_":"<canonical time>"}`, from
// the decoder's start, into *dst (or only checks it, with dst nil, as
// timeValue does). It returns the offset after it, or false, having read
// nothing, when the state starts otherwise.
func (d *decoder) leadingTimestamp(dst *time.Time) (int, bool) {
	const head = `{"timestamp":{"_type_":"` + TagDatetime + `","_data_":"`
	s := d.data
	if len(s) <= len(head) || string(s[:len(head)]) != head {
		return 0, false
	}
	n, ok := canonicalTimeData(s[len(head):], dst)
	if !ok {
		return 0, false
	}
	return len(head) + n, true
}

// canonicalTimeData reads `<canonical time>"}`, the end of a datetime_iso
// tagged value the encoder wrote, at the start of s into *dst (or only
// checks it, with dst nil), and returns the bytes it takes, or false.
func canonicalTimeData(s []byte, dst *time.Time) (int, bool) {
	f, n, ok := scanCanonicalISO(s)
	if !ok || len(s) < n+2 || s[n] != '"' || s[n+1] != '}' {
		return 0, false
	}
	if dst != nil {
		*dst = f.time()
	}
	return n + 2, true
}

// ---- typed decoding ----

type decodeFunc func(d *decoder, v reflect.Value) error

func (t *Registry) decoderFor(rt reflect.Type) decodeFunc {
	if f, ok := t.dec.Load(rt); ok {
		return f.(decodeFunc)
	}
	var (
		wg sync.WaitGroup
		f  decodeFunc
	)
	wg.Add(1)
	fi, loaded := t.dec.LoadOrStore(rt, decodeFunc(func(d *decoder, v reflect.Value) error {
		wg.Wait()
		return f(d, v)
	}))
	if loaded {
		return fi.(decodeFunc)
	}
	f = t.newDecoder(rt)
	wg.Done()
	t.dec.Store(rt, f)
	return f
}

// nullable wraps a decoder so that null sets the zero value.
func nullable(f decodeFunc) decodeFunc {
	return func(d *decoder, v reflect.Value) error {
		if d.null() {
			v.SetZero()
			return nil
		}
		return f(d, v)
	}
}

func (t *Registry) newDecoder(rt reflect.Type) decodeFunc {
	if tc := t.transcodingFor(rt); tc != nil {
		return nullable(func(d *decoder, v reflect.Value) error {
			_, data, err := d.tagged(tc.name, false)
			if err != nil {
				return err
			}
			got, err := tc.decode(data)
			if err != nil {
				return fmt.Errorf("transcoding %q: %w", tc.name, err)
			}
			v.Set(got)
			return nil
		})
	}
	for _, b := range []struct {
		typ  reflect.Type
		name string
	}{{uuidType, TagUUID}, {decimalType, TagDecimal}, {timeType, TagDatetime}} {
		if rt == b.typ {
			name := b.name
			return nullable(func(d *decoder, v reflect.Value) error {
				data, _, err := d.tagged(name, true)
				if err != nil {
					return err
				}
				got, err := parseBuiltin(name, string(data))
				if err != nil {
					return err
				}
				v.Set(reflect.ValueOf(got))
				return nil
			})
		}
	}
	switch rt.Kind() {
	case reflect.Bool:
		return nullable(func(d *decoder, v reflect.Value) error {
			switch {
			case d.peek() == 't' && d.literal("true"):
				v.SetBool(true)
			case d.peek() == 'f' && d.literal("false"):
				v.SetBool(false)
			default:
				return d.errorf("want a boolean")
			}
			return nil
		})
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := rt.Bits()
		return nullable(func(d *decoder, v reflect.Value) error {
			s, _, err := d.number()
			if err != nil {
				return err
			}
			n, err := strconv.ParseInt(string(s), 10, bits)
			if err != nil {
				return intError(rt, err)
			}
			v.SetInt(n)
			return nil
		})
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		bits := rt.Bits()
		return nullable(func(d *decoder, v reflect.Value) error {
			s, _, err := d.number()
			if err != nil {
				return err
			}
			n, err := strconv.ParseUint(string(s), 10, bits)
			if err != nil {
				return intError(rt, err)
			}
			v.SetUint(n)
			return nil
		})
	case reflect.Float32, reflect.Float64:
		bits := rt.Bits()
		return nullable(func(d *decoder, v reflect.Value) error {
			s, _, err := d.number()
			if err != nil {
				return err
			}
			f, err := strconv.ParseFloat(string(s), bits)
			if err != nil {
				return fmt.Errorf("%s: %w", rt, err)
			}
			v.SetFloat(f)
			return nil
		})
	case reflect.String:
		return nullable(func(d *decoder, v reflect.Value) error {
			s, err := d.str()
			if err != nil {
				return err
			}
			v.SetString(s)
			return nil
		})
	case reflect.Pointer:
		elem := rt.Elem()
		return nullable(func(d *decoder, v reflect.Value) error {
			if v.IsNil() {
				v.Set(reflect.New(elem))
			}
			return d.t.decoderFor(elem)(d, v.Elem())
		})
	case reflect.Interface:
		return nullable(func(d *decoder, v reflect.Value) error {
			if rt.NumMethod() != 0 {
				return fmt.Errorf("%w: cannot decode into interface %s", ErrTranscodingNotRegistered, rt)
			}
			a, err := d.any()
			if err != nil {
				return err
			}
			if a == nil {
				v.SetZero()
			} else {
				v.Set(reflect.ValueOf(a))
			}
			return nil
		})
	case reflect.Slice:
		elem := rt.Elem()
		return nullable(func(d *decoder, v reflect.Value) error {
			dec := d.t.decoderFor(elem)
			v.Set(reflect.MakeSlice(rt, 0, 0))
			return d.array(func() error {
				n := v.Len()
				if n == v.Cap() {
					v.Grow(1)
				}
				v.SetLen(n + 1)
				return dec(d, v.Index(n))
			})
		})
	case reflect.Array:
		elem := rt.Elem()
		return nullable(func(d *decoder, v reflect.Value) error {
			dec := d.t.decoderFor(elem)
			i := 0
			v.SetZero()
			return d.array(func() error {
				if i >= v.Len() {
					return d.skip()
				}
				i++
				return dec(d, v.Index(i-1))
			})
		})
	case reflect.Map:
		if rt.Key().Kind() != reflect.String {
			break
		}
		key, elem := rt.Key(), rt.Elem()
		return nullable(func(d *decoder, v reflect.Value) error {
			dec := d.t.decoderFor(elem)
			v.Set(reflect.MakeMap(rt))
			return d.object(func(k []byte) error {
				ev := reflect.New(elem).Elem()
				if err := dec(d, ev); err != nil {
					return err
				}
				v.SetMapIndex(reflect.ValueOf(string(k)).Convert(key), ev)
				return nil
			})
		})
	case reflect.Struct:
		c := t.codecOf(rt)
		return nullable(func(d *decoder, v reflect.Value) error {
			next := 0
			more, err := d.openObject()
			for more && err == nil {
				var known bool
				if next, known, err = d.nextField(c, v, next); err != nil {
					return err
				}
				if !known {
					var key []byte
					if key, err = d.key(); err != nil {
						return err
					}
					if next, err = d.member(c, v, key, next); err != nil {
						return err
					}
				}
				more, err = d.nextMember()
			}
			return err
		})
	}
	return func(*decoder, reflect.Value) error {
		return fmt.Errorf("%w: type %s", ErrTranscodingNotRegistered, rt)
	}
}

// parseISOBytes parses the canonical form the encoder writes
// (YYYY-MM-DDTHH:MM:SS[.f…]+00:00 or Z) without allocating, and anything else
// through parseISO.
func parseISOBytes(b []byte) (time.Time, error) {
	if t, n, ok := parseCanonicalISO(b); ok && n == len(b) {
		return t, nil
	}
	return parseISO(string(b))
}

// parseCanonicalISO parses the canonical form at the start of b, reporting
// the bytes it takes, or false when b does not start so.
func parseCanonicalISO(b []byte) (t time.Time, n int, ok bool) {
	f, n, ok := scanCanonicalISO(b)
	if !ok {
		return time.Time{}, 0, false
	}
	return f.time(), n, true
}

// isoFields are the parts of a canonical timestamp, checked.
type isoFields struct {
	y, mo, dd, h, mi, sec, ns int
}

// time returns the instant, in UTC. Computing the Unix time directly is
// several times cheaper than time.Date's normalisation.
func (f isoFields) time() time.Time {
	secs := unixDays(f.y, f.mo, f.dd)*86400 + int64(f.h*3600+f.mi*60+f.sec)
	return time.Unix(secs, int64(f.ns)).UTC()
}

// scanCanonicalISO reads and checks the canonical form at the start of b,
// reporting the bytes it takes, or false when b does not start so.
func scanCanonicalISO(b []byte) (f isoFields, n int, ok bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return f, 0, false
	}
	cy, yy := digits2(b, 0), digits2(b, 2)
	f.mo, f.dd = digits2(b, 5), digits2(b, 8)
	f.h, f.mi, f.sec = digits2(b, 11), digits2(b, 14), digits2(b, 17)
	f.y = 100*cy + yy
	i := 19
	if b[i] == '.' {
		i++
		digits := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' && digits < 9 {
			f.ns = f.ns*10 + int(b[i]-'0')
			i++
			digits++
		}
		for ; digits < 9 && digits > 0; digits++ {
			f.ns *= 10
		}
	}
	switch rest := b[i:]; {
	case len(rest) >= 6 && string(rest[:6]) == "+00:00":
		i += 6
	case len(rest) >= 1 && rest[0] == 'Z':
		i++
	default:
		return f, 0, false
	}
	if cy < 0 || yy < 0 || f.y < 1 || f.mo < 1 || f.mo > 12 || f.dd < 1 || f.dd > daysIn(f.y, f.mo) ||
		f.h < 0 || f.h >= 24 || f.mi < 0 || f.mi >= 60 || f.sec < 0 || f.sec >= 60 {
		return f, 0, false
	}
	return f, i, true
}

// digits2 returns the two decimal digits at b[i:i+2] as a number, or a
// negative number when they are not both digits.
func digits2(b []byte, i int) int {
	hi, lo := b[i]-'0', b[i+1]-'0'
	if hi > 9 || lo > 9 {
		return -1
	}
	return int(hi)*10 + int(lo)
}

// daysIn returns the number of days in month mo of year y.
func daysIn(y, mo int) int {
	switch mo {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// unixDays returns the days from 1970-01-01 to the date y-mo-dd (y ≥ 1), by
// the days-from-civil algorithm (http://howardhinnant.github.io/date_algorithms.html).
func unixDays(y, mo, dd int) int64 {
	if mo <= 2 {
		y--
	}
	era := y / 400 // y ≥ 0
	yoe := y - era*400
	m := mo + 9
	if mo > 2 {
		m = mo - 3
	}
	doy := (153*m+2)/5 + dd - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
