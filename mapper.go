package eventsourcing

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/internal/codec"
	"github.com/eventsourcing-go/eventsourcing/internal/seal"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Compressor compresses stored state. Decompress must reject corrupt input.
type Compressor interface {
	Compress(data []byte) ([]byte, error)
	Decompress(data []byte) ([]byte, error)
}

// Cipher encrypts stored state. Decrypt must reject tampered input with an
// error, never return garbage.
type Cipher interface {
	Encrypt(plaintext []byte) ([]byte, error)
	Decrypt(ciphertext []byte) ([]byte, error)
}

// Mapper converts between domain events and stored events: it encodes the
// event's state as JSON (see Types), then compresses and encrypts it when
// configured; reading reverses the steps. A Mapper is safe for concurrent use.
type Mapper struct {
	types *Types
	pipe  seal.Pipeline
}

// MapperOption configures a Mapper.
type MapperOption func(*Mapper)

// WithCompressor makes the mapper compress state (before encrypting it).
func WithCompressor(c Compressor) MapperOption { return func(m *Mapper) { m.pipe.Compressor = c } }

// WithCipher makes the mapper encrypt state (after compressing it).
func WithCipher(c Cipher) MapperOption { return func(m *Mapper) { m.pipe.Cipher = c } }

// NewMapper returns a mapper for the given types.
func NewMapper(types *Types, opts ...MapperOption) *Mapper {
	m := &Mapper{types: types}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Settings read by NewMapperFromEnv.
const (
	EnvCompressorTopic = "COMPRESSOR_TOPIC"
	EnvCipherTopic     = "CIPHER_TOPIC"
	EnvCipherKey       = "CIPHER_KEY"
)

// NewMapperFromEnv returns a mapper configured by COMPRESSOR_TOPIC (zlib),
// CIPHER_TOPIC (AES-GCM) and CIPHER_KEY (base64 of 16, 24 or 32 bytes; a key
// alone enables AES-GCM, a cipher topic without a key is an error). A follower
// decodes its leader's events with env.WithName(leaderName).
func NewMapperFromEnv(types *Types, env config.Env) (*Mapper, error) {
	pipe, err := seal.FromEnv(env, ErrConfiguration)
	if err != nil {
		return nil, err
	}
	return &Mapper{types: types, pipe: pipe}, nil
}

// Types returns the registry the mapper encodes with.
func (m *Mapper) Types() *Types { return m.types }

// FromEvent encodes a domain event for a recorder. A creation event must carry
// its OriginatorTopic (Save fills it in).
func (m *Mapper) FromEvent(e Event) (recorder.StoredEvent, error) {
	s, _, err := m.fromEvent(make([]byte, 0, codec.StateSizeGuess), e, e.OriginatorID.String())
	return s, err
}

// fromEvent is FromEvent appending the state to buf, so that a batch's
// states share one buffer (see codec.Registry.AppendStored). It returns buf
// extended. oid is the text of e's originator id.
func (m *Mapper) fromEvent(buf []byte, e Event, oid string) (recorder.StoredEvent, []byte, error) {
	if e.creation && e.OriginatorTopic == "" {
		return recorder.StoredEvent{}, buf, fmt.Errorf("encode event %s v%d: %w: creation event without originator topic",
			e.OriginatorID, e.OriginatorVersion, ErrTopicNotRegistered)
	}
	return m.types.codec.AppendStored(buf, m.pipe, oid, e.OriginatorVersion, e.Timestamp, e.OriginatorTopic, e.Data)
}

// ToEvent decodes a stored event (or a notification's StoredEvent). Any failure
// wraps ErrDeserialisation and names the topic, id and version.
func (m *Mapper) ToEvent(s recorder.StoredEvent) (Event, error) {
	d, err := m.types.codec.DecodeStored(m.pipe, &s)
	if err != nil {
		return Event{}, err
	}
	return Event{OriginatorID: d.OriginatorID, OriginatorVersion: s.OriginatorVersion, Timestamp: d.Timestamp,
		OriginatorTopic: string(d.OriginatorTopic), Data: d.Data}, nil
}

// replay applies stored events, selected by the originator id sid (id
// parsed), to root in order: what ToEvent then Replay do for each, but
// with the work that is the same for all events done once (see
// codec.Reader); the events are applied as they are decoded, never
// collected. When ti is not nil, a creation event must be of that
// aggregate type (else ErrAggregateType).
func (m *Mapper) replay(root Root, stored []recorder.StoredEvent, sid string, id uuid.UUID, ti *codec.Type) error {
	a := root.aggregate()
	rd := m.types.codec.Reader(m.pipe, sid, id)
	var d codec.Decoded
	for i := range stored {
		// Only the first event's timestamp (a creation's) and the last's
		// (the aggregate's modification time) are kept.
		if err := rd.ReadAt(stored, i, i == 0 || i == len(stored)-1, &d); err != nil {
			return err
		}
		if ti != nil && len(d.OriginatorTopic) > 0 && !m.types.codec.IsTopicOf(d.OriginatorTopic, ti) {
			return fmt.Errorf("%w: recorded as %q, asked for %q", ErrAggregateType, d.OriginatorTopic, ti.Topic())
		}
		e := Event{OriginatorID: d.OriginatorID, OriginatorVersion: stored[i].OriginatorVersion, Timestamp: d.Timestamp, Data: d.Data}
		if err := replay(root, a, &e); err != nil {
			return err
		}
	}
	return nil
}

// Zlib is the zlib (RFC 1950) compressor at the default level.
type Zlib = seal.Zlib

// AESCipher is AES-GCM with a fresh random 12-byte nonce per message, no
// associated data, stored as nonce(12) ‖ tag(16) ‖ ciphertext, as the
// reference stores it.
type AESCipher = seal.AESCipher

// NewAESCipher returns an AES-GCM cipher for a 16, 24 or 32-byte key.
func NewAESCipher(key []byte) (*AESCipher, error) {
	if !seal.KeySize(len(key)) {
		return nil, fmt.Errorf("AES key of %d bytes: %w: need 16, 24 or 32", len(key), ErrConfiguration)
	}
	return seal.NewAESCipher(key)
}

// CreateKey returns a random AES key of n bytes (16, 24 or 32), base64-encoded
// for CIPHER_KEY.
func CreateKey(n int) (string, error) {
	if !seal.KeySize(n) {
		return "", fmt.Errorf("key size %d: %w: need 16, 24 or 32", n, ErrArgument)
	}
	return seal.CreateKey(n), nil
}
