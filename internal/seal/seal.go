// Package seal holds what seals stored state after the codec encodes it,
// and opens it before the codec decodes it: compression, then encryption.
// Package eventsourcing exports the compressor and cipher it knows (Zlib
// and AESCipher); applications may plug in their own.
package seal

import (
	"bytes"
	"compress/zlib"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// Compressor and Cipher are eventsourcing.Compressor and eventsourcing.Cipher.
type (
	Compressor interface {
		Compress(data []byte) ([]byte, error)
		Decompress(data []byte) ([]byte, error)
	}
	Cipher interface {
		Encrypt(plaintext []byte) ([]byte, error)
		Decrypt(ciphertext []byte) ([]byte, error)
	}
)

// Pipeline compresses then encrypts state, each when configured, and opens
// it by the reverse steps.
type Pipeline struct {
	Compressor Compressor
	Cipher     Cipher
}

// Seal compresses then encrypts b.
func (m Pipeline) Seal(b []byte) ([]byte, error) {
	var err error
	if m.Compressor != nil {
		if b, err = m.Compressor.Compress(b); err != nil {
			return nil, fmt.Errorf("compress: %w", err)
		}
	}
	if m.Cipher != nil {
		if b, err = m.Cipher.Encrypt(b); err != nil {
			return nil, fmt.Errorf("encrypt: %w", err)
		}
	}
	return b, nil
}

// Open decrypts then decompresses b.
func (m Pipeline) Open(b []byte) ([]byte, error) {
	var err error
	if m.Cipher != nil {
		if b, err = m.Cipher.Decrypt(b); err != nil {
			return nil, fmt.Errorf("decrypt: %w", err)
		}
	}
	if m.Compressor != nil {
		if b, err = m.Compressor.Decompress(b); err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
	}
	return b, nil
}

// Settings FromEnv reads, package eventsourcing's EnvCompressorTopic,
// EnvCipherTopic and EnvCipherKey.
const (
	EnvCompressorTopic = "COMPRESSOR_TOPIC"
	EnvCipherTopic     = "CIPHER_TOPIC"
	EnvCipherKey       = "CIPHER_KEY"
)

// Env is where FromEnv reads settings (a config.Env).
type Env interface {
	Lookup(key string) (string, bool)
	Prefixed(key string) string
}

// FromEnv returns the pipeline that COMPRESSOR_TOPIC (zlib), CIPHER_TOPIC
// (AES-GCM) and CIPHER_KEY (base64 of 16, 24 or 32 bytes; a key alone
// enables AES-GCM, a cipher topic without a key is an error) configure.
// Malformed settings are errors wrapping errConfig.
func FromEnv(env Env, errConfig error) (Pipeline, error) {
	var p Pipeline
	if topic, ok := env.Lookup(EnvCompressorTopic); ok && topic != "" {
		if !isZlibTopic(topic) {
			return Pipeline{}, fmt.Errorf("%s=%q: %w: unknown compressor (use zlib)", env.Prefixed(EnvCompressorTopic), topic, errConfig)
		}
		p.Compressor = Zlib{}
	}
	topic, hasTopic := env.Lookup(EnvCipherTopic)
	hasTopic = hasTopic && topic != ""
	key, hasKey := env.Lookup(EnvCipherKey)
	hasKey = hasKey && key != ""
	if hasTopic && !isAESTopic(topic) {
		return Pipeline{}, fmt.Errorf("%s=%q: %w: unknown cipher (use aes)", env.Prefixed(EnvCipherTopic), topic, errConfig)
	}
	if hasTopic && !hasKey {
		return Pipeline{}, fmt.Errorf("%s is set but %s is not: %w", env.Prefixed(EnvCipherTopic), env.Prefixed(EnvCipherKey), errConfig)
	}
	if hasKey {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(key))
		if err != nil {
			return Pipeline{}, fmt.Errorf("%s is not base64: %w", env.Prefixed(EnvCipherKey), errConfig)
		}
		if !KeySize(len(raw)) {
			return Pipeline{}, fmt.Errorf("%s: AES key of %d bytes: %w: need 16, 24 or 32", env.Prefixed(EnvCipherKey), len(raw), errConfig)
		}
		c, err := NewAESCipher(raw)
		if err != nil {
			return Pipeline{}, fmt.Errorf("%s: %w", env.Prefixed(EnvCipherKey), err)
		}
		p.Cipher = c
	}
	return p, nil
}

// isZlibTopic reports whether t (COMPRESSOR_TOPIC) names Zlib.
func isZlibTopic(t string) bool {
	switch strings.ToLower(t) {
	case "zlib", "eventsourcing.compressor:zlibcompressor", "eventsourcing.compressor":
		return true
	}
	return false
}

// isAESTopic reports whether t (CIPHER_TOPIC) names AESCipher.
func isAESTopic(t string) bool {
	switch strings.ToLower(t) {
	case "aes", "aes-gcm", "aesgcm", "eventsourcing.cipher:aescipher", "eventsourcing.cipher":
		return true
	}
	return false
}

// Zlib is the zlib (RFC 1950) compressor at the default level.
type Zlib struct{}

// Compress implements Compressor.
func (Zlib) Compress(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decompress implements Compressor.
func (Zlib) Decompress(data []byte) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// AES-GCM layout constants: nonce ‖ tag ‖ ciphertext, as the reference stores it.
const (
	gcmNonceSize = 12
	gcmTagSize   = 16
)

// AESCipher is AES-GCM with a fresh random 12-byte nonce per message, no
// associated data, stored as nonce(12) ‖ tag(16) ‖ ciphertext.
type AESCipher struct {
	aead cipher.AEAD
}

// KeySize reports whether n is the size of an AES key: 16, 24 or 32 bytes.
func KeySize(n int) bool { return n == 16 || n == 24 || n == 32 }

// NewAESCipher returns an AES-GCM cipher for a key of a size KeySize accepts.
func NewAESCipher(key []byte) (*AESCipher, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &AESCipher{aead: aead}, nil
}

// Encrypt implements Cipher.
func (c *AESCipher) Encrypt(plaintext []byte) ([]byte, error) {
	out := make([]byte, gcmNonceSize+gcmTagSize, gcmNonceSize+gcmTagSize+len(plaintext)+gcmTagSize)
	nonce := out[:gcmNonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	// Go's AEAD appends the tag; the stored layout puts it before the ciphertext.
	sealed := c.aead.Seal(out[gcmNonceSize+gcmTagSize:], nonce, plaintext, nil)
	n := len(plaintext)
	copy(out[gcmNonceSize:gcmNonceSize+gcmTagSize], sealed[n:])
	return append(out[:gcmNonceSize+gcmTagSize], sealed[:n]...), nil
}

// Decrypt implements Cipher.
func (c *AESCipher) Decrypt(data []byte) ([]byte, error) {
	if len(data) < gcmNonceSize+gcmTagSize {
		return nil, fmt.Errorf("ciphertext of %d bytes is too short", len(data))
	}
	nonce := data[:gcmNonceSize]
	tag := data[gcmNonceSize : gcmNonceSize+gcmTagSize]
	body := data[gcmNonceSize+gcmTagSize:]
	sealed := make([]byte, 0, len(body)+gcmTagSize)
	sealed = append(append(sealed, body...), tag...)
	plain, err := c.aead.Open(sealed[:0], nonce, sealed, nil)
	if err != nil {
		return nil, fmt.Errorf("authentication failed: %w", err)
	}
	return plain, nil
}

// CreateKey returns a random AES key of n bytes, a size KeySize accepts,
// base64-encoded.
func CreateKey(n int) string {
	key := make([]byte, n)
	// crypto/rand.Read does not fail (it crashes the program instead).
	_, _ = rand.Read(key)
	return base64.StdEncoding.EncodeToString(key)
}
