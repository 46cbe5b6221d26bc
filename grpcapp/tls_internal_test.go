package grpcapp

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Refused handshakes are logged at a limited rate.
func TestRefusalsAreRateLimited(t *testing.T) {
	var logs bytes.Buffer
	r := &refusals{logger: slog.New(slog.NewTextHandler(&logs, nil))}
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4242}
	for range 100 {
		r.refused(remote, errors.New("tls: bad certificate"))
	}
	assert.Equal(t, refusalBurst, strings.Count(logs.String(), "refused a TLS handshake"))
	assert.Contains(t, logs.String(), "remote=192.0.2.1:4242")
	assert.Contains(t, logs.String(), "at most 5 lines per 1m0s")
	assert.Equal(t, 100-refusalBurst, r.suppressed)

	// A new window logs again and counts what was left out.
	logs.Reset()
	r.start = r.start.Add(-refusalWindow)
	r.refused(remote, errors.New("tls: bad certificate"))
	assert.Contains(t, logs.String(), "not_logged_since_last=95")
}
