// Package codec stores the state of events and snapshots as compact JSON,
// the layout the Python eventsourcing library writes, and reads it back. It
// is the engine behind eventsourcing.Types and eventsourcing.Mapper: a
// Registry holds the registered types (topics, aliases, class versions and
// upcasters) and transcodings, and encodes and decodes straight between Go
// values and bytes through per-type plans built once, with no intermediate
// tree.
//
// The codec knows nothing of aggregates or applications: the caller hands
// it an event's envelope fields and payload, or a snapshot's timestamps and
// aggregate value, and gets a stored event or bytes back (and the reverse),
// in one call per event: AppendStored, DecodeStored and a Reader for
// a replay, SealSnapshot and OpenSnapshot. Compression and encryption are
// the seal.Pipeline's those calls are given, run on the encoded bytes.
package codec

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
)

// Error kinds the codec reports; package eventsourcing exports them under
// the same names.
var (
	ErrArgument                 = errors.New("invalid argument")
	ErrAggregateType            = errors.New("aggregate type mismatch")
	ErrTranscodingNotRegistered = errors.New("transcoding not registered")
	ErrTopicNotRegistered       = errors.New("topic not registered")
	ErrTopicTaken               = errors.New("topic already registered for another type")
)

// Registry is a set of registered types and transcodings, and the encoders
// and decoders built for them. It is safe for concurrent use; registration
// is expected before the first event is stored.
type Registry struct {
	mu      sync.RWMutex // guards tags, tagsFor and registration
	reg     atomic.Pointer[registry]
	tags    map[string]*transcoding
	tagsFor map[reflect.Type]*transcoding

	enc    sync.Map // reflect.Type -> encodeFunc
	dec    sync.Map // reflect.Type -> decodeFunc
	codecs sync.Map // reflect.Type -> *structCodec
}

// registry is a snapshot of the registered types that is never changed:
// registration stores a modified copy, so that the lookups every event makes
// take no lock (a read lock writes to memory shared by all cores).
type registry struct {
	byTopic map[string]*Type // topics and aliases
	byType  map[reflect.Type]*Type
}

// Type is a registered struct type: an event payload or an aggregate.
type Type struct {
	topic        string
	typ          reflect.Type
	upcasters    []func(state map[string]any) error
	classVersion int
	codecCache   atomic.Pointer[structCodec]
	payloads     payloadType
}

// Topic returns the topic the type is registered under.
func (ti *Type) Topic() string { return ti.topic }

// GoType returns the registered Go type (a struct type).
func (ti *Type) GoType() reflect.Type { return ti.typ }

// codec returns the type's struct codec, kept here to spare every event
// the lookup in t.codecs.
func (ti *Type) codec(t *Registry) *structCodec {
	if c := ti.codecCache.Load(); c != nil {
		return c
	}
	c := t.codecOf(ti.typ)
	ti.codecCache.Store(c)
	return c
}

// New returns an empty registry that knows the built-in transcodings
// (uuid.UUID, decimal.Decimal, time.Time).
func New() *Registry {
	t := &Registry{
		tags:    map[string]*transcoding{},
		tagsFor: map[reflect.Type]*transcoding{},
	}
	t.reg.Store(&registry{byTopic: map[string]*Type{}, byType: map[reflect.Type]*Type{}})
	return t
}

// Register registers rt (a struct type, or a pointer to one) under topic and
// its aliases. upcasters[i] turns the state of class version i+1 into
// version i+2. aggregate says whether rt is an aggregate type, whose fields
// may not take the names of a snapshot's envelope (else an event's).
// Registering the same type under the same topic again is harmless; another
// type under a taken topic, or a type under a second topic, fails with
// ErrTopicTaken.
func (t *Registry) Register(rt reflect.Type, topic string, aliases []string, upcasters []func(map[string]any) error, aggregate bool) error {
	if rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	if rt.Kind() != reflect.Struct {
		return fmt.Errorf("register %s under %q: %w: only struct types can be registered", rt, topic, ErrArgument)
	}
	if topic == "" {
		return fmt.Errorf("register %s: %w: empty topic", rt, ErrArgument)
	}
	ti := &Type{topic: topic, typ: rt, upcasters: upcasters, classVersion: len(upcasters) + 1, payloads: newPayloadType(rt)}
	if err := checkEnvelopeFields(rt, aggregate); err != nil {
		return fmt.Errorf("register %s under %q: %w", rt, topic, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.reg.Load()
	if old, ok := r.byType[rt]; ok && old.topic != topic {
		return fmt.Errorf("register %s under %q: %w: already registered as %q", rt, topic, ErrTopicTaken, old.topic)
	}
	for _, name := range append([]string{topic}, aliases...) {
		if old, ok := r.byTopic[name]; ok && old.typ != rt {
			return fmt.Errorf("register %s under %q: %w: %q is %s", rt, topic, ErrTopicTaken, name, old.typ)
		}
	}
	next := &registry{byTopic: maps.Clone(r.byTopic), byType: maps.Clone(r.byType)}
	next.byType[rt] = ti
	for _, name := range append([]string{topic}, aliases...) {
		next.byTopic[name] = ti
	}
	t.reg.Store(next)
	return nil
}

// TypeOf returns the registered type rt (or the type rt points to), or an
// error wrapping ErrTopicNotRegistered.
func (t *Registry) TypeOf(rt reflect.Type) (*Type, error) {
	if rt == nil {
		return nil, fmt.Errorf("%w: nil value", ErrTopicNotRegistered)
	}
	if rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	ti, ok := t.reg.Load().byType[rt]
	if !ok {
		return nil, fmt.Errorf("%w: type %s (register it with eventsourcing.Register)", ErrTopicNotRegistered, rt)
	}
	return ti, nil
}

// ByTopic returns the type registered under topic or an alias of it, or an
// error wrapping ErrTopicNotRegistered.
func (t *Registry) ByTopic(topic string) (*Type, error) {
	ti, ok := t.reg.Load().byTopic[topic]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicNotRegistered, topic)
	}
	return ti, nil
}

// IsTopicOf reports whether topic (a topic or an alias) names ti. It does
// not allocate.
func (t *Registry) IsTopicOf(topic []byte, ti *Type) bool {
	other, ok := t.reg.Load().byTopic[string(topic)]
	return ok && other == ti
}

// Topics returns the registered topics (not aliases), sorted.
func (t *Registry) Topics() []string {
	seen := map[string]bool{}
	for _, ti := range t.reg.Load().byType {
		seen[ti.topic] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// transcoding is a registered conversion of a non-JSON Go type to a tagged
// value {"_type_": name, "_data_": data}.
type transcoding struct {
	name   string
	typ    reflect.Type
	encode func(reflect.Value) (any, error)
	decode func(any) (reflect.Value, error)
}

// RegisterTranscoding stores values of type T, at any depth, as
// {"_type_": name, "_data_": encode(v)}; decode turns the data, decoded
// without a target type, back into a value of type T.
func RegisterTranscoding[T any](t *Registry, name string, encode func(T) (any, error), decode func(any) (T, error)) error {
	rt := reflect.TypeFor[T]()
	if builtinTag(name) || builtinTagType(rt) {
		return fmt.Errorf("register transcoding %q for %s: %w: built-in transcodings cannot be replaced", name, rt, ErrArgument)
	}
	tc := &transcoding{
		name:   name,
		typ:    rt,
		encode: func(v reflect.Value) (any, error) { return encode(v.Interface().(T)) },
		decode: func(data any) (reflect.Value, error) {
			v, err := decode(data)
			if err != nil {
				return reflect.Value{}, err
			}
			return reflect.ValueOf(&v).Elem(), nil
		},
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.tags[name]; ok && old.typ != rt {
		return fmt.Errorf("register transcoding %q for %s: %w: taken by %s", name, rt, ErrTopicTaken, old.typ)
	}
	t.tags[name] = tc
	t.tagsFor[rt] = tc
	// Codecs built before this registration may have treated rt as a plain value.
	t.enc.Clear()
	t.dec.Clear()
	t.codecs.Clear()
	for _, ti := range t.reg.Load().byType {
		ti.codecCache.Store(nil)
	}
	return nil
}

func (t *Registry) transcodingFor(rt reflect.Type) *transcoding {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.tagsFor[rt]
}

func (t *Registry) transcodingNamed(name string) *transcoding {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.tags[name]
}
