package eventsourcing_test

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

func envOf(name string, kv map[string]string) config.Env {
	return config.NewEnvFrom(name, kv, nil)
}

func TestMapperPipelines(t *testing.T) {
	key, err := es.CreateKey(32)
	require.NoError(t, err)
	raw, _ := base64.StdEncoding.DecodeString(key)
	require.Len(t, raw, 32)

	plain := `"name":"Fido"`
	tests := []struct {
		name       string
		env        map[string]string
		compressed bool
		encrypted  bool
	}{
		{"none", nil, false, false},
		{"compressor", map[string]string{"COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"}, true, false},
		{"cipher", map[string]string{"CIPHER_TOPIC": "eventsourcing.cipher:AESCipher", "CIPHER_KEY": key}, false, true},
		{"key alone enables AES", map[string]string{"CIPHER_KEY": key}, false, true},
		{"both", map[string]string{"COMPRESSOR_TOPIC": "zlib", "CIPHER_KEY": key}, true, true},
	}
	event := es.Event{OriginatorID: es.NewID(), OriginatorVersion: 1, Timestamp: fidoTime, OriginatorTopic: "dogschool:Dog", Data: Registered{Name: "Fido"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := es.NewMapperFromEnv(dogTypes(), envOf("DogSchool", tt.env))
			require.NoError(t, err)
			s, err := m.FromEvent(event)
			require.NoError(t, err)
			assert.Equal(t, !tt.compressed && !tt.encrypted, bytes.Contains(s.State, []byte(plain)))
			if tt.compressed && !tt.encrypted {
				assert.Equal(t, byte(0x78), s.State[0], "zlib header")
			}
			got, err := m.ToEvent(s)
			require.NoError(t, err)
			assert.Equal(t, event, got)

			if tt.encrypted {
				for _, i := range []int{0, 12, 27, 28, len(s.State) - 1} {
					tampered := bytes.Clone(s.State)
					tampered[i] ^= 1
					_, err := m.ToEvent(recorder.StoredEvent{OriginatorID: s.OriginatorID, OriginatorVersion: 1, Topic: s.Topic, State: tampered})
					assert.ErrorIs(t, err, es.ErrDeserialisation, "byte %d", i)
				}
				_, err := m.ToEvent(recorder.StoredEvent{OriginatorID: s.OriginatorID, OriginatorVersion: 1, Topic: s.Topic, State: s.State[:27]})
				assert.ErrorIs(t, err, es.ErrDeserialisation, "too short")
			}
			if tt.compressed && !tt.encrypted {
				_, err := m.ToEvent(recorder.StoredEvent{OriginatorID: s.OriginatorID, OriginatorVersion: 1, Topic: s.Topic, State: s.State[:len(s.State)-3]})
				assert.ErrorIs(t, err, es.ErrDeserialisation, "truncated zlib")
			}
		})
	}
}

func TestMapperEnvErrors(t *testing.T) {
	key16, _ := es.CreateKey(16)
	key24, _ := es.CreateKey(24)
	bad := base64.StdEncoding.EncodeToString(make([]byte, 20))
	tests := []struct {
		name string
		env  map[string]string
		ok   bool
	}{
		{"topic without key", map[string]string{"CIPHER_TOPIC": "aes"}, false},
		{"key of 20 bytes", map[string]string{"CIPHER_KEY": bad}, false},
		{"key not base64", map[string]string{"CIPHER_KEY": "%%%"}, false},
		{"unknown compressor", map[string]string{"COMPRESSOR_TOPIC": "lz4"}, false},
		{"16-byte key", map[string]string{"CIPHER_KEY": key16}, true},
		{"24-byte key", map[string]string{"CIPHER_KEY": key24}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := es.NewMapperFromEnv(dogTypes(), envOf("X", tt.env))
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, es.ErrConfiguration)
			}
		})
	}
	_, err := es.CreateKey(20)
	assert.ErrorIs(t, err, es.ErrArgument)
}

func TestMapperPerApplicationKeys(t *testing.T) {
	k1, _ := es.CreateKey(32)
	k2, _ := es.CreateKey(32)
	env := map[string]string{"APP1_CIPHER_KEY": k1, "APP2_CIPHER_KEY": k2}
	m1, err := es.NewMapperFromEnv(dogTypes(), envOf("app1", env))
	require.NoError(t, err)
	m2, err := es.NewMapperFromEnv(dogTypes(), envOf("app2", env))
	require.NoError(t, err)
	s, err := m1.FromEvent(es.Event{OriginatorID: es.NewID(), OriginatorVersion: 2, Timestamp: fidoTime, Data: TrickAdded{"sit"}})
	require.NoError(t, err)
	_, err = m2.ToEvent(s)
	assert.ErrorIs(t, err, es.ErrDeserialisation, "wrong key fails")
	// A follower decodes a leader's events with the leader's settings.
	m1b, err := es.NewMapperFromEnv(dogTypes(), envOf("app2", env).WithName("app1"))
	require.NoError(t, err)
	_, err = m1b.ToEvent(s)
	assert.NoError(t, err)
}
