package eventsourcing

import (
	"reflect"

	"github.com/eventsourcing-go/eventsourcing/internal/codec"
)

// Types is an application's registry of topics (stable names for event and
// aggregate types, with aliases for renamed ones) and of transcodings (how
// values that JSON cannot hold are stored). An application owns one; it is
// safe for concurrent use, and registration is expected before the first
// event is stored.
//
// State is compact UTF-8 JSON, as the Python eventsourcing library writes it,
// so that Go and Python applications can read each other's events. Struct
// fields are stored under their `json` tag name, else their Go name in
// snake_case (OrderID → "order_id"). Values that JSON cannot hold are stored
// as tagged objects {"_type_": name, "_data_": data}: uuid.UUID (TagUUID),
// decimal.Decimal (TagDecimal, scale kept) and time.Time (TagDatetime) are
// built in; RegisterTranscoding adds more. A nil slice or map is stored as
// null, an empty one as [] or {}; map keys are sorted; numbers decoded into
// `any` are int64 when integral and float64 otherwise.
type Types struct {
	codec *codec.Registry
}

// Built-in tag names.
const (
	TagUUID     = "uuid_hex"
	TagDecimal  = "decimal_str"
	TagDatetime = "datetime_iso"
)

// NewTypes returns an empty registry that knows the built-in transcodings
// (uuid.UUID, decimal.Decimal, time.Time).
func NewTypes() *Types { return &Types{codec: codec.New()} }

// Upcaster rewrites the stored state of an old version of a type into the next
// version, in place. State holds the decoded fields by their stored names
// (tagged values already decoded, e.g. time.Time, uuid.UUID, decimal.Decimal).
type Upcaster func(state map[string]any) error

// TypeOption configures a registered type.
type TypeOption func(*typeOptions)

type typeOptions struct {
	aliases   []string
	upcasters []func(map[string]any) error
}

// Aliases registers older topics of the type, so that history written under a
// previous name still reads. New events are always written under the topic.
func Aliases(topics ...string) TypeOption {
	return func(o *typeOptions) { o.aliases = append(o.aliases, topics...) }
}

// Upcasters declares the type's schema history: upcasters[i] turns the state of
// class version i+1 into version i+2. The current class version is
// len(upcasters)+1; it is written as "class_version" in the state when above 1.
func Upcasters(upcasters ...Upcaster) TypeOption {
	return func(o *typeOptions) {
		for _, u := range upcasters {
			o.upcasters = append(o.upcasters, u)
		}
	}
}

// Register registers T, a struct type (an event payload or an aggregate type),
// under topic, such as "dogschool:Dog.Registered". Registering the same type
// under the same topic again is harmless; another type under a taken topic, or
// a type under a second topic (use Aliases), fails with ErrTopicTaken.
func Register[T any](t *Types, topic string, opts ...TypeOption) error {
	var o typeOptions
	for _, opt := range opts {
		opt(&o)
	}
	rt := reflect.TypeFor[T]()
	if rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	return t.codec.Register(rt, topic, o.aliases, o.upcasters, reflect.PointerTo(rt).Implements(rootType))
}

var rootType = reflect.TypeFor[Root]()

// MustRegister is Register for package initialisation; it panics on error.
func MustRegister[T any](t *Types, topic string, opts ...TypeOption) {
	if err := Register[T](t, topic, opts...); err != nil {
		panic(err)
	}
}

// Topic returns the topic under which v's type is registered.
func (t *Types) Topic(v any) (string, error) {
	ti, err := t.codec.TypeOf(reflect.TypeOf(v))
	if err != nil {
		return "", err
	}
	return ti.Topic(), nil
}

// TopicFor returns the topic of T.
func TopicFor[T any](t *Types) (string, error) {
	ti, err := t.codec.TypeOf(reflect.TypeFor[T]())
	if err != nil {
		return "", err
	}
	return ti.Topic(), nil
}

// Type returns the Go type registered under topic (or an alias of it).
func (t *Types) Type(topic string) (reflect.Type, bool) {
	ti, err := t.codec.ByTopic(topic)
	if err != nil {
		return nil, false
	}
	return ti.GoType(), true
}

// Topics returns the registered topics (not aliases), sorted.
func (t *Types) Topics() []string { return t.codec.Topics() }

// RegisterTranscoding teaches the transcoder to store values of type T, at any
// depth, as {"_type_": name, "_data_": encode(v)}. encode returns a value the
// transcoder can store (JSON values, registered structs, other transcoded
// types); decode receives that value as decoded without a target type: string,
// bool, nil, int64 or float64 for numbers, []any, map[string]any, or the Go
// value of a nested tagged value.
func RegisterTranscoding[T any](t *Types, name string, encode func(T) (any, error), decode func(any) (T, error)) error {
	return codec.RegisterTranscoding(t.codec, name, encode, decode)
}

// Encode encodes v with the application's transcodings, as event state is
// encoded. It is exported for tools and tests that store values by the same rules.
func (t *Types) Encode(v any) ([]byte, error) { return t.codec.Encode(v) }

// Decode decodes data into the value ptr points to, by the rules of Encode.
func (t *Types) Decode(data []byte, ptr any) error { return t.codec.Decode(data, ptr) }
