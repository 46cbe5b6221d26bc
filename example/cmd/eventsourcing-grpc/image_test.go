package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/internal/containers"
)

// The offline image, built as `make images` builds it (a static binary
// built here, docker/eventsourcing-grpc.Dockerfile, FROM scratch): it runs
// as the numeric user 65532, stays under its size budget, serves an
// application on SQLite in its /data directory, and its health command
// works without a shell. It runs whenever a Docker engine answers.
func TestDockerImage(t *testing.T) {
	engine, err := containers.Connect(t.Context())
	if err != nil {
		t.Skipf("no Docker engine answers (%v): the image test skips", err)
	}
	image := buildImage(t, engine)
	info, err := engine.InspectImage(t.Context(), image)
	require.NoError(t, err)
	assert.Equal(t, "65532:65532", info.User)
	assert.Less(t, info.Size, int64(40<<20), "the image's size budget")

	c, err := engine.Run(t.Context(), containers.RunOptions{
		Image: image,
		Env: []string{
			"APPLICATION_TOPIC=orders.Orders",
			"ORDERS_GRPC_SERVER_ADDRESS=0.0.0.0:50051",
			"GRPC_INSECURE=true",
			"ORDERS_PERSISTENCE_MODULE=sqlite",
			"ORDERS_SQLITE_DBNAME=/data/orders.db",
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Remove(context.Background()) })

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	inContainer := func(cmd ...string) (int, string) {
		code, out, err := c.Exec(ctx, append([]string{"/usr/local/bin/eventsourcing-grpc"}, cmd...)...)
		require.NoError(t, err)
		return code, out
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
func buildImage(t *testing.T, engine *containers.Engine) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "eventsourcing-grpc"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+engine.Arch())
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
	require.NoError(t, engine.Build(t.Context(), name, dir))
	t.Cleanup(func() { _ = engine.RemoveImage(context.Background(), name) })
	return name
}
