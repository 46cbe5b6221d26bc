package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The offline image, built as `make images` builds it (a static binary
// built here, docker/eventsourcing-grpc.Dockerfile, FROM scratch): it runs
// as the numeric user 65532, stays under its size budget, serves an
// application on SQLite in its /data directory, and its health command
// works without a shell. It runs whenever a Docker engine answers.
func TestDockerImage(t *testing.T) {
	pool, err := dockertest.NewPool("")
	if err == nil {
		err = pool.Client.Ping()
	}
	if err != nil {
		t.Skipf("no Docker engine answers (%v): the image test skips", err)
	}
	image := buildImage(t, pool)
	info, err := pool.Client.InspectImage(image)
	require.NoError(t, err)
	assert.Equal(t, "65532:65532", info.Config.User)
	assert.Less(t, info.Size, int64(40<<20), "the image's size budget")

	res, err := pool.RunWithOptions(&dockertest.RunOptions{
		Repository: "eventsourcing-grpc", Tag: image[len("eventsourcing-grpc:"):],
		Env: []string{
			"APPLICATION_TOPIC=orders.Orders",
			"ORDERS_GRPC_SERVER_ADDRESS=0.0.0.0:50051",
			"GRPC_INSECURE=true",
			"ORDERS_PERSISTENCE_MODULE=sqlite",
			"ORDERS_SQLITE_DBNAME=/data/orders.db",
		},
	}, func(hc *docker.HostConfig) { hc.PublishAllPorts = false })
	require.NoError(t, err)
	t.Cleanup(func() { _ = pool.Purge(res) })

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	inContainer := func(cmd ...string) (int, string) {
		var out bytes.Buffer
		code, err := res.Exec(append([]string{"/usr/local/bin/eventsourcing-grpc"}, cmd...), dockertest.ExecOptions{StdOut: &out, StdErr: &out})
		require.NoError(t, err)
		return code, out.String()
	}
	// Starting takes well under a second; the minute only ends a hang.
	for {
		code, out := inContainer("health")
		if code == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the container never served: %s", out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	code, out := inContainer("call", "127.0.0.1:50051", "CreateNewOrder")
	require.Equal(t, 0, code, out)
	assert.Regexp(t, `^"[0-9a-f-]{36}"\n$`, out)
}

// buildImage builds the binary for the engine's architecture and the
// image in a context like the one `make images` prepares, and returns the
// image's name; it is removed when the test ends.
func buildImage(t *testing.T, pool *dockertest.Pool) string {
	t.Helper()
	ver, err := pool.Client.Version()
	require.NoError(t, err)
	dir := t.TempDir()
	build := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "eventsourcing-grpc"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+ver.Get("Arch"))
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	dockerfile, err := os.ReadFile(filepath.Join("..", "..", "..", "docker", "eventsourcing-grpc.Dockerfile"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), dockerfile, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca-certificates.crt"), nil, 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "data"), 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "tmp"), 0o755))

	tag := make([]byte, 6)
	_, _ = rand.Read(tag)
	name := fmt.Sprintf("eventsourcing-grpc:test-%s", hex.EncodeToString(tag))
	var log bytes.Buffer
	err = pool.Client.BuildImage(docker.BuildImageOptions{Name: name, ContextDir: dir, Dockerfile: "Dockerfile", OutputStream: &log, RmTmpContainer: true, Context: t.Context()})
	require.NoError(t, err, "docker build: %s", log.String())
	t.Cleanup(func() { _ = pool.Client.RemoveImage(name) })
	return name
}
