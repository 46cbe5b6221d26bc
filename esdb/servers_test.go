package esdb_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/esdb"
)

// target is a server the tests run against: esdbtest always, a node in
// another process when one is available.
type target struct {
	name string
	uri  func(t testing.TB) string
}

func targets() []target {
	name := "docker"
	if os.Getenv("EVENTSTOREDB_URI") != "" {
		name = "EVENTSTOREDB_URI"
	}
	return []target{
		{"esdbtest", esdbtestURI},
		{name, realURI},
	}
}

// realImage is EventStoreDB's own image, used instead of the emulator's
// when the engine already has it (it is never pulled).
const realImage = "eventstore/eventstore:24.10"

var shared struct {
	once sync.Once
	uri  string
	err  error
}

// realURI returns the URI of a node outside the test process: EVENTSTOREDB_URI
// when set, else a container started once for the test binary when a Docker
// engine answers (EventStoreDB's image when the engine has it, else the
// emulator's image, built from this repository). Without either the test is
// skipped with one line; with an engine, a container that does not start
// fails the test.
func realURI(t testing.TB) string {
	t.Helper()
	if uri := os.Getenv("EVENTSTOREDB_URI"); uri != "" {
		return uri
	}
	pool := dockerPool(t)
	_, err := pool.Client.InspectImage(realImage)
	useReal := err == nil
	if !useReal {
		buildEmulator(t)
	}
	shared.once.Do(func() {
		if useReal {
			shared.uri, shared.err = startRealNode(pool)
			return
		}
		var n *node
		if n, shared.err = startNode(context.Background(), pool, nodeOptions{env: []string{"EVENTSTORE_MEM_DB=true"}}); shared.err == nil {
			shared.uri = n.uri
			addCleanup(n.purge)
		}
	})
	if shared.err != nil {
		t.Fatalf("the shared container: %v", shared.err)
	}
	return shared.uri
}

// startRealNode runs EventStoreDB's image, insecure and in memory.
func startRealNode(pool *dockertest.Pool) (string, error) {
	res, err := pool.RunWithOptions(&dockertest.RunOptions{
		Repository: "eventstore/eventstore", Tag: "24.10",
		Env:    []string{"EVENTSTORE_INSECURE=true", "EVENTSTORE_MEM_DB=true", "EVENTSTORE_RUN_PROJECTIONS=None"},
		Labels: map[string]string{testLabel: "esdb"},
	}, func(hc *docker.HostConfig) { hc.AutoRemove = true })
	if err != nil {
		return "", fmt.Errorf("docker run %s: %w", realImage, err)
	}
	addCleanup(func() { _ = pool.Purge(res) })
	uri := "esdb://" + res.GetHostPort("2113/tcp") + "?tls=false"
	pool.MaxWait = 90 * time.Second
	if err := pool.Retry(func() error { return ping(uri) }); err != nil {
		return "", fmt.Errorf("%s did not answer: %w", realImage, err)
	}
	return uri, nil
}

func ping(uri string) error {
	cfg, err := esdbclient.ParseConnectionString(uri)
	if err != nil {
		return err
	}
	cfg.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = esdb.CommitPosition(ctx, c)
	return err
}

// cleanups are run by TestMain after every test: containers and images
// shared by the tests of this binary.
var cleanups struct {
	sync.Mutex
	fs []func()
}

func addCleanup(f func()) {
	cleanups.Lock()
	defer cleanups.Unlock()
	cleanups.fs = append(cleanups.fs, f)
}

func TestMain(m *testing.M) {
	code := m.Run()
	cleanups.Lock()
	for i := len(cleanups.fs) - 1; i >= 0; i-- {
		cleanups.fs[i]()
	}
	cleanups.Unlock()
	os.Exit(code)
}

// newClient returns a client for uri, closed when the test ends.
func newClient(t testing.TB, uri string) *esdbclient.Client {
	t.Helper()
	cfg, err := esdbclient.ParseConnectionString(uri)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// --- Docker ---

var engine struct {
	once sync.Once
	pool *dockertest.Pool
	err  error

	imageOnce sync.Once
	tag       string // of emulatorRepository
	imageErr  error
}

const emulatorRepository = "esdb-emulator"

// dockerPool returns a pool on the local Docker engine, or skips the test
// with one line when no engine answers.
func dockerPool(t testing.TB) *dockertest.Pool {
	t.Helper()
	engine.once.Do(func() {
		engine.pool, engine.err = dockertest.NewPool("")
		if engine.err == nil {
			engine.err = engine.pool.Client.Ping()
		}
		if engine.err == nil {
			removeStale(engine.pool)
		}
	})
	if engine.err != nil {
		t.Skipf("no Docker engine answers (%v): the tests on containers skip", engine.err)
	}
	return engine.pool
}

// buildEmulator builds the emulator's image once for the test binary, as
// `make images` does: a static binary built here, in an image FROM scratch
// (docker/esdb-emulator.Dockerfile). It is removed when the tests end.
func buildEmulator(t testing.TB) {
	t.Helper()
	pool := dockerPool(t)
	engine.imageOnce.Do(func() { engine.tag, engine.imageErr = buildEmulatorImage(pool) })
	if engine.imageErr != nil {
		t.Fatalf("building the emulator image: %v", engine.imageErr)
	}
}

// testLabel marks the containers of these tests, so that a later run
// removes what a killed test binary left behind.
const testLabel = "io.github.eventsourcing-go.test"

// removeStale removes the containers of this package's tests created longer
// ago than a test binary lives (go test's default timeout is 10 minutes):
// those of test binaries that were killed (a timeout, Ctrl-C).
func removeStale(pool *dockertest.Pool) {
	old := time.Now().Add(-20 * time.Minute).Unix()
	cs, err := pool.Client.ListContainers(docker.ListContainersOptions{All: true, Filters: map[string][]string{"label": {testLabel}}})
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.Created < old {
			_ = pool.Client.RemoveContainer(docker.RemoveContainerOptions{ID: c.ID, Force: true, RemoveVolumes: true})
		}
	}
}

func buildEmulatorImage(pool *dockertest.Pool) (string, error) {
	dir, err := os.MkdirTemp("", "esdb-emulator-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	ver, err := pool.Client.Version()
	if err != nil {
		return "", fmt.Errorf("engine version: %w", err)
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "esdb-emulator"), "../cmd/esdb-emulator")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+ver.Get("Arch"))
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	dockerfile, err := os.ReadFile("../docker/esdb-emulator.Dockerfile")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), dockerfile, 0o644); err != nil {
		return "", err
	}
	for _, d := range []string{"data", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	tag := "test-" + randomHex(6)
	name := emulatorRepository + ":" + tag
	var out bytes.Buffer
	if err := pool.Client.BuildImage(docker.BuildImageOptions{
		Name: name, ContextDir: dir, Dockerfile: "Dockerfile", OutputStream: &out, RmTmpContainer: true,
	}); err != nil {
		return "", fmt.Errorf("docker build: %w\n%s", err, out.String())
	}
	addCleanup(func() { _ = pool.Client.RemoveImage(name) })
	return tag, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// node is an emulator container, reached on a loopback port of this host.
type node struct {
	pool *dockertest.Pool
	res  *dockertest.Resource
	addr string // 127.0.0.1:port
	uri  string // insecure; a TLS node's tests make their own
}

type nodeOptions struct {
	env    []string
	mounts []string // host-path:container-path[:ro], or volume:container-path
	// hostPort is the loopback port to publish 2113 on (default: any free
	// one); a fixed port outlives a restart or a replaced container.
	hostPort string
}

// startNode runs the emulator's image and waits until it serves.
func startNode(ctx context.Context, pool *dockertest.Pool, o nodeOptions) (*node, error) {
	res, err := pool.RunWithOptions(&dockertest.RunOptions{
		Repository: emulatorRepository, Tag: engine.tag, Env: o.env, Mounts: o.mounts,
		Labels:       map[string]string{testLabel: "esdb"},
		PortBindings: map[docker.Port][]docker.PortBinding{"2113/tcp": {{HostIP: "127.0.0.1", HostPort: o.hostPort}}},
	}, func(hc *docker.HostConfig) { hc.PublishAllPorts = false })
	if err != nil {
		return nil, fmt.Errorf("docker run %s:%s: %w", emulatorRepository, engine.tag, err)
	}
	n := &node{pool: pool, res: res, addr: res.GetHostPort("2113/tcp")}
	n.uri = "esdb://" + n.addr + "?tls=false"
	if err := n.waitServing(ctx); err != nil {
		n.purge()
		return nil, err
	}
	return n, nil
}

// startTestNode is startNode for one test: the container is removed when
// the test ends.
func startTestNode(t testing.TB, o nodeOptions) *node {
	t.Helper()
	pool := dockerPool(t)
	buildEmulator(t)
	began := time.Now()
	n, err := startNode(t.Context(), pool, o)
	require.NoError(t, err)
	t.Cleanup(n.purge)
	t.Logf("container %.12s serving at %s after %v", n.res.Container.ID, n.addr, time.Since(began).Round(time.Millisecond))
	return n
}

// nodeStartBound bounds the wait for a container to serve. Starting takes
// about half a second; a minute means it never will.
const nodeStartBound = time.Minute

// waitServing runs the image's health command in the container until it
// succeeds (the image has no shell; the command is the one its
// HEALTHCHECK runs).
func (n *node) waitServing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, nodeStartBound)
	defer cancel()
	for {
		code, out, err := n.exec(ctx, "/usr/local/bin/esdb-emulator", "health", "-timeout", "1s")
		if err == nil && code == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the container never served (health: exit %d, %v: %s; logs: %s)", code, err, out, n.logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// exec runs a command in the container and returns its exit code and
// output; the call ends with ctx, also when the engine does not answer.
func (n *node) exec(ctx context.Context, cmd ...string) (int, string, error) {
	c := n.pool.Client
	e, err := c.CreateExec(docker.CreateExecOptions{Container: n.res.Container.ID, Cmd: cmd, AttachStdout: true, AttachStderr: true, Context: ctx})
	if err != nil {
		return -1, "", fmt.Errorf("docker exec: %w", err)
	}
	var out bytes.Buffer
	if err := c.StartExec(e.ID, docker.StartExecOptions{OutputStream: &out, ErrorStream: &out, Context: ctx}); err != nil {
		return -1, out.String(), fmt.Errorf("docker exec: %w", err)
	}
	inspect, err := c.InspectExec(e.ID)
	if err != nil {
		return -1, out.String(), fmt.Errorf("docker exec: %w", err)
	}
	return inspect.ExitCode, out.String(), nil
}

func (n *node) logs() string {
	var out bytes.Buffer
	_ = n.pool.Client.Logs(docker.LogsOptions{Container: n.res.Container.ID, OutputStream: &out, ErrorStream: &out, Stdout: true, Stderr: true})
	return out.String()
}

func (n *node) purge() { _ = n.pool.Purge(n.res) }

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	require.NoError(t, err)
	return port
}
