package containers_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/internal/containers"
)

// The engine's life cycle of an image and a container, on an image FROM
// scratch holding a static probe built here (no registry is needed). It
// runs whenever a Docker engine answers and skips with one line otherwise.
func TestContainer(t *testing.T) {
	ctx := t.Context()
	e, err := containers.Connect(ctx)
	if err != nil {
		t.Skipf("no Docker engine answers (%v): the container test skips", err)
	}
	require.NotEmpty(t, e.Arch())

	dir := t.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "probe"), "./testdata/probe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+e.Arch())
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	dockerfile := "FROM scratch\nCOPY probe /probe\nUSER 65532:65532\nEXPOSE 8080\nENTRYPOINT [\"/probe\"]\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644))
	tag := make([]byte, 6)
	_, _ = rand.Read(tag)
	name := "containers-probe:test-" + hex.EncodeToString(tag)
	require.NoError(t, e.Build(ctx, name, dir))
	t.Cleanup(func() { _ = e.RemoveImage(context.Background(), name) })

	img, err := e.InspectImage(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, "65532:65532", img.User)
	assert.Positive(t, img.Size)
	_, err = e.InspectImage(ctx, name+"-missing")
	assert.ErrorIs(t, err, containers.ErrNotFound)

	label := "io.github.eventsourcing-go.test.containers"
	volume := "containers-test-" + hex.EncodeToString(tag)
	t.Cleanup(func() { _ = e.RemoveVolume(context.Background(), volume) })
	c, err := e.Run(ctx, containers.RunOptions{
		Image: name, Env: []string{"A=1"}, Labels: map[string]string{label: "probe"},
		Mounts: []string{volume + ":/data"}, Publish: []string{"127.0.0.1::8080"},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Remove(context.Background()) })

	addr, err := c.HostAddr(ctx, "8080/tcp")
	require.NoError(t, err)
	assert.Equal(t, "probe", dial(t, addr))

	code, out2, err := c.Exec(ctx, "/probe", "exit", "3")
	require.NoError(t, err)
	assert.Equal(t, 3, code)
	assert.Equal(t, "exiting 3\n", out2)

	listed, err := e.Labeled(ctx, label)
	require.NoError(t, err)
	ids := make([]string, len(listed))
	for i, l := range listed {
		ids[i] = l.ID
		assert.WithinDuration(t, time.Now(), l.Created, 10*time.Minute)
	}
	assert.Contains(t, ids, c.ID)

	// SIGTERM ends the probe cleanly; the same container starts again.
	require.NoError(t, c.Kill(ctx, "TERM"))
	code, err = c.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	require.NoError(t, c.Start(ctx))
	addr, err = c.HostAddr(ctx, "8080/tcp")
	require.NoError(t, err)
	assert.Equal(t, "probe", dial(t, addr))
	assert.Contains(t, c.Logs(ctx), "listening\nlistening\n")

	require.NoError(t, c.Remove(ctx))
	_, _, err = c.Exec(ctx, "/probe", "exit", "0")
	assert.Error(t, err, "exec in a removed container")
	require.NoError(t, e.RemoveVolume(ctx, volume))
}

// dial reads what the probe at addr answers, retrying while the port
// mapping is not yet up.
func dial(t *testing.T, addr string) string {
	t.Helper()
	var err error
	for range 100 {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			b, rerr := io.ReadAll(c)
			_ = c.Close()
			if rerr == nil && len(b) > 0 {
				return string(b)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the probe at %s never answered: %v", addr, err)
	return ""
}
