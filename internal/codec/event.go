package codec

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"
	"unsafe"

	"github.com/google/uuid"
)

// StateSizeGuess is the room to make for an event's state before encoding
// it: a creation event with one short field takes about 140 bytes. A larger
// state only costs the buffer's growth.
const StateSizeGuess = 192

// IDTextSize is the length of a UUID's canonical text.
const IDTextSize = 36

// AppendIDText appends the canonical text of id (lower-case, hyphenated) to
// buf, and returns buf extended and the text as a string that shares buf's
// memory: a batch's states and originator ids then share one allocation. buf
// must never be written again where the text lies (later appends go after
// it, and growing buf copies it elsewhere), so that the string never changes.
func AppendIDText(buf []byte, id uuid.UUID) ([]byte, string) {
	start := len(buf)
	buf = hex.AppendEncode(buf, id[:4])
	buf = append(buf, '-')
	buf = hex.AppendEncode(buf, id[4:6])
	buf = append(buf, '-')
	buf = hex.AppendEncode(buf, id[6:8])
	buf = append(buf, '-')
	buf = hex.AppendEncode(buf, id[8:10])
	buf = append(buf, '-')
	buf = hex.AppendEncode(buf, id[10:])
	return buf, unsafe.String(&buf[start], len(buf)-start)
}

// AppendEvent appends the state of an event of type ti to b: its envelope
// (timestamp, and the originator topic of a creation event, when not
// empty), the fields of payload, and its class version when above 1.
func (t *Registry) AppendEvent(b []byte, ti *Type, timestamp time.Time, originatorTopic string, payload any) ([]byte, error) {
	b = append(b, `{"timestamp":`...)
	b = appendTime(b, timestamp)
	if originatorTopic != "" {
		b = append(b, `,"originator_topic":`...)
		b = appendString(b, originatorTopic)
	}
	v := reflect.ValueOf(payload)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return b, fmt.Errorf("%w: nil event payload", ErrArgument)
		}
		v = v.Elem()
	}
	b, err := t.appendFields(b, v, ti.codec(t), true)
	if err != nil {
		return b, err
	}
	if ti.classVersion > 1 {
		b = append(b, `,"class_version":`...)
		b = strconv.AppendInt(b, int64(ti.classVersion), 10)
	}
	return append(b, '}'), nil
}

// decodeEventState decodes upcast event state: the payload into payload, a
// zero value of ti's type, and the envelope's timestamp and originator topic
// (nil when absent; it aliases state or a scratch buffer). Without wantTime
// the timestamp is checked but not made (ts is zero). Strings are made in
// strs when it is on; it is returned as the decoding left it.
func (t *Registry) decodeEventState(state []byte, ti *Type, payload reflect.Value, wantTime bool, strs stringArena) (ts time.Time, topic []byte, _ stringArena, err error) {
	c := ti.codec(t)
	d := decoder{t: t, data: state, strs: strs}
	tsp := &ts
	if !wantTime {
		tsp = nil
	}
	next := 0
	var more bool
	if n, ok := d.leadingTimestamp(tsp); ok {
		// The encoder's own form, read in one pass: the first member done.
		if n == len(state)-1 && state[n] == '}' {
			return ts, nil, d.strs, nil // a payload without fields, as encoded
		}
		d.pos = n
		more, err = d.nextMember()
	} else {
		more, err = d.openObject()
	}
	for more && err == nil {
		// Keys mostly come as the encoder writes them: the timestamp, then
		// the payload's fields in order; those are matched, not scanned.
		d.ws()
		var known bool
		if known = d.literal(`"timestamp":`); known {
			err = d.timeValue(tsp)
		} else {
			next, known, err = d.nextField(c, payload, next)
		}
		if !known && err == nil {
			var key []byte
			if key, err = d.key(); err != nil {
				break
			}
			switch string(key) {
			case "timestamp":
				err = d.timeValue(tsp)
			case "originator_topic":
				topic, err = d.strBytes()
			default:
				next, err = d.member(c, payload, key, next)
			}
		}
		if err == nil {
			more, err = d.nextMember()
		}
	}
	if err == nil {
		err = d.end()
	}
	return ts, topic, d.strs, err
}

// upcast brings old state up to the type's class version.
func (t *Registry) upcast(state []byte, ti *Type) ([]byte, error) {
	d := decoder{t: t, data: state}
	v, err := d.any()
	if err == nil {
		err = d.end()
	}
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("state is not an object")
	}
	version := int64(1)
	if cv, ok := m["class_version"].(int64); ok {
		version = cv
	}
	if version == int64(ti.classVersion) {
		return state, nil
	}
	if version < 1 || version > int64(ti.classVersion) {
		return nil, fmt.Errorf("class version %d of %q is unknown (current %d)", version, ti.topic, ti.classVersion)
	}
	for v := version; v < int64(ti.classVersion); v++ {
		if err := ti.upcasters[v-1](m); err != nil {
			return nil, fmt.Errorf("upcast %q from class version %d: %w", ti.topic, v, err)
		}
	}
	m["class_version"] = int64(ti.classVersion)
	return t.Encode(m)
}

// AppendSnapshot appends the state of a snapshot of an aggregate of type ti,
// as the reference stores it: {"timestamp":<at>,"topic":<ti's topic>,
// "state":{"_created_on":…,"_modified_on":…,<the fields of root>}}. root is
// a pointer to the aggregate.
func (t *Registry) AppendSnapshot(b []byte, ti *Type, at, createdOn, modifiedOn time.Time, root any) ([]byte, error) {
	b = append(b, `{"timestamp":`...)
	b = appendTime(b, at)
	b = append(b, `,"topic":`...)
	b = appendString(b, ti.topic)
	b = append(b, `,"state":{"_created_on":`...)
	b = appendTime(b, createdOn)
	b = append(b, `,"_modified_on":`...)
	b = appendTime(b, modifiedOn)
	b, err := t.appendFields(b, reflect.ValueOf(root).Elem(), ti.codec(t), true)
	if err != nil {
		return b, err
	}
	return append(b, '}', '}'), nil
}

// DecodeSnapshot decodes the state of a snapshot into root, a pointer to a
// new aggregate of type ti, and its timestamps into createdOn and
// modifiedOn. A snapshot of another type fails with ErrAggregateType.
func (t *Registry) DecodeSnapshot(state []byte, ti *Type, root any, createdOn, modifiedOn *time.Time) error {
	rv := reflect.ValueOf(root).Elem()
	c := ti.codec(t)
	d := decoder{t: t, data: state}
	next := 0
	err := d.object(func(key []byte) error {
		switch string(key) {
		case "topic":
			topic, err := d.str()
			if err != nil {
				return err
			}
			if other, err := t.ByTopic(topic); err != nil || other != ti {
				return fmt.Errorf("%w: snapshot of %q, asked for %q", ErrAggregateType, topic, ti.topic)
			}
			return nil
		case "state":
			return d.object(func(key []byte) error {
				switch string(key) {
				case "_created_on", "created_on":
					return d.timeValue(createdOn)
				case "_modified_on", "modified_on":
					return d.timeValue(modifiedOn)
				}
				var err error
				next, err = d.member(c, rv, key, next)
				return err
			})
		}
		return d.skip()
	})
	if err != nil {
		return err
	}
	return d.end()
}
