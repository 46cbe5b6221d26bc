// Package containers drives the local Docker engine through the docker
// command, for the tests that run the project's images (esdb's tests on the
// emulator's container, the eventsourcing-grpc image's test). The command is
// what `make images` and docker/e2e.sh use already, so the tests need no
// Docker client library and the modules that hold them no dependency for it.
package containers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Engine is the Docker engine the docker command reaches.
type Engine struct {
	arch string
}

// Connect returns the engine when one answers within ten seconds, or an
// error that says why not (no docker command, no engine).
func Connect(ctx context.Context) (*Engine, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := docker(ctx, "version", "--format", "{{.Server.Arch}}")
	if err != nil {
		return nil, err
	}
	return &Engine{arch: strings.TrimSpace(out)}, nil
}

// Arch is the engine's architecture (amd64, arm64), the GOARCH of binaries
// built for its images.
func (e *Engine) Arch() string { return e.arch }

// Image is what the tests check of an image.
type Image struct {
	User string // the configured user ("65532:65532")
	Size int64  // bytes
}

// InspectImage returns what the engine knows of an image; the error wraps
// ErrNotFound when it has no such image.
func (e *Engine) InspectImage(ctx context.Context, ref string) (Image, error) {
	out, err := docker(ctx, "image", "inspect", "--format", "{{.Config.User}}\t{{.Size}}", ref)
	if err != nil {
		if strings.Contains(err.Error(), "No such image") {
			return Image{}, fmt.Errorf("%w: image %s", ErrNotFound, ref)
		}
		return Image{}, err
	}
	user, size, _ := strings.Cut(strings.TrimSpace(out), "\t")
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil {
		return Image{}, fmt.Errorf("docker image inspect %s: size %q: %w", ref, size, err)
	}
	return Image{User: user, Size: n}, nil
}

// ErrNotFound is the error of an image the engine does not have.
var ErrNotFound = errors.New("not found")

// Build builds the image name from the Dockerfile in dir, dir being the
// build's context; the error carries the build's output.
func (e *Engine) Build(ctx context.Context, name, dir string) error {
	var out bytes.Buffer
	x := exec.CommandContext(ctx, "docker", "build", "--rm", "-t", name, dir)
	x.Stdout, x.Stderr = &out, &out
	if err := x.Run(); err != nil {
		return fmt.Errorf("docker build %s: %w\n%s", name, err, out.Bytes())
	}
	return nil
}

// RemoveImage removes an image.
func (e *Engine) RemoveImage(ctx context.Context, name string) error {
	_, err := docker(ctx, "image", "rm", "-f", name)
	return err
}

// RemoveVolume removes a volume (and fails when a container still uses it).
func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	_, err := docker(ctx, "volume", "rm", "-f", name)
	return err
}

// RunOptions are the settings of a container.
type RunOptions struct {
	Image  string
	Env    []string          // KEY=value
	Labels map[string]string // to find the container again (Labeled)
	Mounts []string          // host-path:container-path[:ro], or volume:container-path
	// Publish are port mappings as docker run -p takes them
	// ("127.0.0.1::2113", "127.0.0.1:5000:2113"); PublishAll publishes
	// every exposed port on a free one instead.
	Publish    []string
	PublishAll bool
	// AutoRemove removes the container when it exits (docker run --rm).
	AutoRemove bool
}

// Run starts a container in the background.
func (e *Engine) Run(ctx context.Context, o RunOptions) (*Container, error) {
	args := []string{"run", "-d"}
	if o.AutoRemove {
		args = append(args, "--rm")
	}
	if o.PublishAll {
		args = append(args, "-P")
	}
	for _, p := range o.Publish {
		args = append(args, "-p", p)
	}
	for _, v := range o.Env {
		args = append(args, "-e", v)
	}
	for _, m := range o.Mounts {
		args = append(args, "-v", m)
	}
	keys := make([]string, 0, len(o.Labels))
	for k := range o.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--label", k+"="+o.Labels[k])
	}
	out, err := docker(ctx, append(args, o.Image)...)
	if err != nil {
		return nil, err
	}
	return &Container{ID: strings.TrimSpace(out)}, nil
}

// Listed is a container found by its label.
type Listed struct {
	ID      string
	Created time.Time
}

// Labeled returns the containers, running or not, that carry the label key
// (whatever its value).
func (e *Engine) Labeled(ctx context.Context, key string) ([]Listed, error) {
	out, err := docker(ctx, "ps", "-a", "-q", "--no-trunc", "--filter", "label="+key)
	if err != nil {
		return nil, err
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return nil, nil
	}
	out, err = docker(ctx, append([]string{"inspect", "--format", "{{.Id}} {{.Created}}"}, ids...)...)
	if err != nil {
		return nil, err
	}
	var cs []Listed
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		id, created, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, created)
		if err != nil {
			return nil, fmt.Errorf("docker inspect %s: created %q: %w", id, created, err)
		}
		cs = append(cs, Listed{ID: id, Created: t})
	}
	return cs, nil
}

// Container is a container of the engine.
type Container struct {
	ID string
}

// HostAddr returns the host's address of a published port ("2113/tcp"),
// with 127.0.0.1 for a port published on every interface.
func (c *Container) HostAddr(ctx context.Context, port string) (string, error) {
	out, err := docker(ctx, "port", c.ID, port)
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	host, p, err := net.SplitHostPort(strings.TrimSpace(first))
	if err != nil {
		return "", fmt.Errorf("docker port %s %s: %q: %w", c.ID, port, out, err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, p), nil
}

// Exec runs a command in the running container and returns its exit code
// and output (stdout and stderr). The error is docker's own failure: the
// command's exit code is not an error.
func (c *Container) Exec(ctx context.Context, cmd ...string) (int, string, error) {
	var out bytes.Buffer
	x := exec.CommandContext(ctx, "docker", append([]string{"exec", c.ID}, cmd...)...)
	x.Stdout, x.Stderr = &out, &out
	err := x.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), nil
	case errors.As(err, &exit) && ctx.Err() == nil && exit.ExitCode() < 125 && !dockerFailed(out.String()):
		return exit.ExitCode(), out.String(), nil
	default:
		return -1, out.String(), fmt.Errorf("docker exec %s: %w: %s", c.ID, err, bytes.TrimSpace(out.Bytes()))
	}
}

// dockerFailed reports the output of a docker exec that failed itself (no
// such container, one that is not running) rather than its command; the
// codes 125 and up are its failures too (a command that cannot be run).
func dockerFailed(out string) bool {
	return strings.HasPrefix(out, "Error response from daemon:") || strings.HasPrefix(out, "Error: No such container")
}

// Kill sends a signal ("TERM", "KILL") to the container's process.
func (c *Container) Kill(ctx context.Context, signal string) error {
	_, err := docker(ctx, "kill", "-s", signal, c.ID)
	return err
}

// Wait waits for the container to stop and returns its exit code.
func (c *Container) Wait(ctx context.Context) (int, error) {
	out, err := docker(ctx, "wait", c.ID)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// Start starts the stopped container again.
func (c *Container) Start(ctx context.Context) error {
	_, err := docker(ctx, "start", c.ID)
	return err
}

// Logs returns what the container wrote to stdout and stderr so far (or
// why it could not be read).
func (c *Container) Logs(ctx context.Context) string {
	var out bytes.Buffer
	x := exec.CommandContext(ctx, "docker", "logs", c.ID)
	x.Stdout, x.Stderr = &out, &out
	if err := x.Run(); err != nil {
		fmt.Fprintf(&out, "(docker logs: %v)", err)
	}
	return out.String()
}

// Remove removes the container, running or not, with its anonymous
// volumes.
func (c *Container) Remove(ctx context.Context) error {
	_, err := docker(ctx, "rm", "-f", "-v", c.ID)
	return err
}

// docker runs the docker command and returns its standard output; the error
// carries its standard error.
func docker(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	x := exec.CommandContext(ctx, "docker", args...)
	x.Stdout, x.Stderr = &stdout, &stderr
	if err := x.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %w: %s", args[0], err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}
