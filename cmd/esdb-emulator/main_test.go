package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
)

func TestParseUsers(t *testing.T) {
	m, err := parseUsers("admin:changeit,ops:x:y")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"admin": "changeit", "ops": "x:y"}, m)
	_, err = parseUsers("nopassword")
	assert.Error(t, err)
}

func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   []string
		want  config
		notes []string
	}{
		{"defaults", nil, config{addr: "127.0.0.1:2113"}, nil},
		{"container", []string{"EVENTSTORE_NODE_IP=0.0.0.0", "EVENTSTORE_DB=/data", "EVENTSTORE_INSECURE=true", "PATH=/bin"},
			config{addr: "0.0.0.0:2113", data: "/data"}, nil},
		{"old names", []string{"EVENTSTORE_HTTP_IP=10.0.0.1", "EVENTSTORE_HTTP_PORT=1113"}, config{addr: "10.0.0.1:1113"}, nil},
		{"new names win", []string{"EVENTSTORE_HTTP_PORT=1113", "EVENTSTORE_NODE_PORT=2114"}, config{addr: "127.0.0.1:2114"}, nil},
		{"memory wins", []string{"EVENTSTORE_DB=/data", "EVENTSTORE_MEM_DB=True"}, config{addr: "127.0.0.1:2113"}, nil},
		{"certificates", []string{
			"EVENTSTORE_CERTIFICATE_FILE=/c/node.crt", "EVENTSTORE_CERTIFICATE_PRIVATE_KEY_FILE=/c/node.key",
			"EVENTSTORE_TRUSTED_ROOT_CERTIFICATES_PATH=/c/ca",
		}, config{addr: "127.0.0.1:2113", certFile: "/c/node.crt", keyFile: "/c/node.key", caPath: "/c/ca"}, nil},
		{"insecure ignores certificates", []string{"EVENTSTORE_INSECURE=true", "EVENTSTORE_CERTIFICATE_FILE=/c/node.crt"},
			config{addr: "127.0.0.1:2113"}, nil},
		{"secure without certificates", []string{"EVENTSTORE_INSECURE=false"}, config{addr: "127.0.0.1:2113", generateTLS: true}, nil},
		{"passwords", []string{"EVENTSTORE_DEFAULT_ADMIN_PASSWORD=secret"}, config{addr: "127.0.0.1:2113", users: "admin:secret,ops:changeit"}, nil},
		{"verbose", []string{"EVENTSTORE_LOG_LEVEL=Verbose"}, config{addr: "127.0.0.1:2113", verbose: true}, nil},
		{"accepted", []string{"EVENTSTORE_RUN_PROJECTIONS=All", "EVENTSTORE_ENABLE_ATOM_PUB_OVER_HTTP=true", "EVENTSTORE_CLUSTER_SIZE=1", "EVENTSTORE_FOO=1"},
			config{addr: "127.0.0.1:2113", projections: esdbtest.ProjectionsAll}, []string{
				"EVENTSTORE_FOO is not emulated; ignored",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, notes, err := configFromEnv(tc.env)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.notes, notes)
		})
	}
	for _, bad := range [][]string{
		{"EVENTSTORE_INSECURE=maybe"},
		{"EVENTSTORE_NODE_PORT=http"},
		{"EVENTSTORE_MEM_DB=yes please"},
		{"EVENTSTORE_CERTIFICATE_FILE=/c/node.crt"},
		{"EVENTSTORE_RUN_PROJECTIONS=Some"},
		{"EVENTSTORE_CLUSTER_SIZE=3"},
	} {
		_, _, err := configFromEnv(bad)
		assert.Error(t, err, "%v", bad)
	}
}

func TestFlagsOverEnvironment(t *testing.T) {
	cfg, _, err := configFromEnv([]string{"EVENTSTORE_DB=/data", "EVENTSTORE_NODE_PORT=2114"})
	require.NoError(t, err)
	require.NoError(t, cfg.parseFlags([]string{"-data", "/other"}, io.Discard))
	assert.Equal(t, config{addr: "127.0.0.1:2114", data: "/other"}, cfg)
	assert.Error(t, cfg.parseFlags([]string{"-cert", "x.crt"}, io.Discard))
	assert.Error(t, cfg.parseFlags([]string{"serve"}, io.Discard))
}

// startNode runs the command in the background and returns the connection
// string it prints; the node stops when the test ends.
func startNode(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	stderr := new(syncBuffer)
	done := make(chan int, 1)
	go func() {
		code := run(ctx, args, nil, w, stderr)
		_ = w.CloseWithError(io.EOF)
		done <- code
	}()
	t.Cleanup(func() {
		cancel()
		go func() { _, _ = io.Copy(io.Discard, out) }()
		assert.Equal(t, 0, <-done, stderr.String())
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, stderr.String())
	return strings.TrimSpace(line)
}

// syncBuffer is a buffer the node logs into while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func health(args ...string) (string, int) {
	var out bytes.Buffer
	code := run(context.Background(), append([]string{"health"}, args...), nil, &out, &out)
	return out.String(), code
}

// A node with given certificate files serves TLS to the official client,
// which verifies it against the trusted root the connection string names;
// the health probe answers 0 while it serves and 1 once it has stopped.
func TestCertificateFilesAndHealth(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, grpcapp.GenerateCertificates(dir, []string{"node"}, grpcapp.CertificateOptions{RootBits: 2048, HostBits: 2048}))
	node := filepath.Join(dir, "node")
	uri := startNode(t, "-addr", "127.0.0.1:0",
		"-cert", filepath.Join(node, "node.crt"), "-key", filepath.Join(node, "node.key"), "-ca", filepath.Join(dir, "root"))
	require.Contains(t, uri, "tls=true&tlsCAFile=")

	cfg, err := esdbclient.ParseConnectionString(uri)
	require.NoError(t, err)
	cfg.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(cfg)
	require.NoError(t, err)
	defer c.Close()
	stream := uuid.NewString()
	_, err = c.AppendToStream(t.Context(), stream, esdbclient.AppendToStreamOptions{},
		esdbclient.EventData{EventID: uuid.New(), EventType: "Tested", ContentType: esdbclient.ContentTypeJson, Data: []byte(`{}`)})
	require.NoError(t, err)
	rs, err := c.ReadStream(t.Context(), stream, esdbclient.ReadStreamOptions{}, 10)
	require.NoError(t, err)
	ev, err := rs.Recv()
	require.NoError(t, err)
	assert.Equal(t, "Tested", ev.Event.EventType)
	rs.Close()

	addr := strings.TrimPrefix(strings.SplitN(uri, "?", 2)[0], "esdb://")
	out, code := health("-addr", addr, "-tls")
	assert.Equal(t, 0, code, out)
	_, code = health("-addr", addr) // plaintext to a TLS node
	assert.Equal(t, 1, code)
}

func TestHealthWithoutNode(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	out, code := health("-addr", addr)
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, addr)
}

func TestHealthFromEnvironment(t *testing.T) {
	uri := startNode(t, "-addr", "127.0.0.1:0")
	_, port, err := net.SplitHostPort(strings.TrimPrefix(strings.SplitN(uri, "?", 2)[0], "esdb://"))
	require.NoError(t, err)
	var out bytes.Buffer
	code := run(context.Background(), []string{"health"}, []string{"EVENTSTORE_NODE_IP=0.0.0.0", "EVENTSTORE_NODE_PORT=" + port, "EVENTSTORE_INSECURE=true"}, &out, &out)
	assert.Equal(t, 0, code, out.String())
}
