package eventsourcing

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
)

// Types is an application's registry of topics (stable names for event and
// aggregate types, with aliases for renamed ones) and of transcodings (how
// non-JSON values are stored). An application owns one; it is safe for
// concurrent use, and registration is expected before the first event is stored.
type Types struct {
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
	byTopic map[string]*typeInfo // topics and aliases
	byType  map[reflect.Type]*typeInfo
}

type typeInfo struct {
	topic        string
	typ          reflect.Type
	upcasters    []Upcaster
	classVersion int
	codecCache   atomic.Pointer[structCodec]
	payloads     payloadType
}

// codec returns the type's struct codec, kept here to spare every event
// the lookup in t.codecs.
func (ti *typeInfo) codec(t *Types) *structCodec {
	if c := ti.codecCache.Load(); c != nil {
		return c
	}
	c := t.codecOf(ti.typ)
	ti.codecCache.Store(c)
	return c
}

// Upcaster rewrites the stored state of an old version of a type into the next
// version, in place. State holds the decoded fields by their stored names
// (tagged values already decoded, e.g. time.Time, uuid.UUID, decimal.Decimal).
type Upcaster func(state map[string]any) error

// TypeOption configures a registered type.
type TypeOption func(*typeInfo, *[]string)

// Aliases registers older topics of the type, so that history written under a
// previous name still reads. New events are always written under the topic.
func Aliases(topics ...string) TypeOption {
	return func(_ *typeInfo, aliases *[]string) { *aliases = append(*aliases, topics...) }
}

// Upcasters declares the type's schema history: upcasters[i] turns the state of
// class version i+1 into version i+2. The current class version is
// len(upcasters)+1; it is written as "class_version" in the state when above 1.
func Upcasters(upcasters ...Upcaster) TypeOption {
	return func(ti *typeInfo, _ *[]string) {
		ti.upcasters = append(ti.upcasters, upcasters...)
		ti.classVersion = len(ti.upcasters) + 1
	}
}

// NewTypes returns an empty registry that knows the built-in transcodings
// (uuid.UUID, decimal.Decimal, time.Time).
func NewTypes() *Types {
	t := &Types{
		tags:    map[string]*transcoding{},
		tagsFor: map[reflect.Type]*transcoding{},
	}
	t.reg.Store(&registry{byTopic: map[string]*typeInfo{}, byType: map[reflect.Type]*typeInfo{}})
	return t
}

// Register registers T, a struct type (an event payload or an aggregate type),
// under topic, such as "dogschool:Dog.Registered". Registering the same type
// under the same topic again is harmless; another type under a taken topic, or
// a type under a second topic (use Aliases), fails with ErrTopicTaken.
func Register[T any](t *Types, topic string, opts ...TypeOption) error {
	return t.register(reflect.TypeFor[T](), topic, opts)
}

// MustRegister is Register for package initialisation; it panics on error.
func MustRegister[T any](t *Types, topic string, opts ...TypeOption) {
	if err := Register[T](t, topic, opts...); err != nil {
		panic(err)
	}
}

func (t *Types) register(rt reflect.Type, topic string, opts []TypeOption) error {
	if rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	if rt.Kind() != reflect.Struct {
		return fmt.Errorf("register %s under %q: %w: only struct types can be registered", rt, topic, ErrArgument)
	}
	if topic == "" {
		return fmt.Errorf("register %s: %w: empty topic", rt, ErrArgument)
	}
	ti := &typeInfo{topic: topic, typ: rt, classVersion: 1, payloads: newPayloadType(rt)}
	var aliases []string
	for _, o := range opts {
		o(ti, &aliases)
	}
	if err := checkEnvelopeFields(rt); err != nil {
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

// Topic returns the topic under which v's type is registered.
func (t *Types) Topic(v any) (string, error) {
	ti, err := t.infoOf(reflect.TypeOf(v))
	if err != nil {
		return "", err
	}
	return ti.topic, nil
}

// TopicFor returns the topic of T.
func TopicFor[T any](t *Types) (string, error) {
	ti, err := t.infoOf(reflect.TypeFor[T]())
	if err != nil {
		return "", err
	}
	return ti.topic, nil
}

// Type returns the Go type registered under topic (or an alias of it).
func (t *Types) Type(topic string) (reflect.Type, bool) {
	ti, ok := t.reg.Load().byTopic[topic]
	if !ok {
		return nil, false
	}
	return ti.typ, true
}

// Topics returns the registered topics (not aliases), sorted.
func (t *Types) Topics() []string {
	seen := map[string]bool{}
	for _, ti := range t.reg.Load().byType {
		seen[ti.topic] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

func (t *Types) infoOf(rt reflect.Type) (*typeInfo, error) {
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

func (t *Types) infoByTopic(topic string) (*typeInfo, error) {
	ti, ok := t.reg.Load().byTopic[topic]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicNotRegistered, topic)
	}
	return ti, nil
}

// transcoding is a registered conversion of a non-JSON Go type to a tagged
// value {"_type_": name, "_data_": data}.
type transcoding struct {
	name   string
	typ    reflect.Type
	encode func(reflect.Value) (any, error)
	decode func(any) (reflect.Value, error)
}

// RegisterTranscoding teaches the transcoder to store values of type T, at any
// depth, as {"_type_": name, "_data_": encode(v)}. encode returns a value the
// transcoder can store (JSON values, registered structs, other transcoded
// types); decode receives that value as decoded without a target type: string,
// bool, nil, int64 or float64 for numbers, []any, map[string]any, or the Go
// value of a nested tagged value.
func RegisterTranscoding[T any](t *Types, name string, encode func(T) (any, error), decode func(any) (T, error)) error {
	rt := reflect.TypeFor[T]()
	if builtinTag(name) || builtinTagType(rt) {
		return fmt.Errorf("register transcoding %q for %s: %w: built-in transcodings cannot be replaced", name, rt, ErrArgument)
	}
	tc := &transcoding{
		name: name,
		typ:  rt,
		encode: func(v reflect.Value) (any, error) {
			return encode(v.Interface().(T))
		},
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
	// Codecs built before this registration may have treated T as a plain value.
	t.enc.Clear()
	t.dec.Clear()
	t.codecs.Clear()
	for _, ti := range t.reg.Load().byType {
		ti.codecCache.Store(nil)
	}
	return nil
}

func (t *Types) transcodingFor(rt reflect.Type) *transcoding {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.tagsFor[rt]
}

func (t *Types) transcodingNamed(name string) *transcoding {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.tags[name]
}
