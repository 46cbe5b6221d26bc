package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/grpcapp"
)

// health exits 0 while the server serves, by the address given or by the
// one the environment gives the application, and 1 once it has stopped.
func TestHealth(t *testing.T) {
	addr, err := grpcapp.FreeLocalhostAddress()
	require.NoError(t, err)
	cmd := startServer(t, addr)

	out, stderr, code := runCmd(t, "health", addr)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "serving "+addr+"\n", out)

	t.Setenv(grpcapp.EnvApplicationTop, "orders.Orders")
	t.Setenv("ORDERS_GRPC_SERVER_ADDRESS", addr)
	_, stderr, code = runCmd(t, "health", "-timeout", "2s")
	require.Equal(t, 0, code, stderr)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	_ = cmd.Wait()
	_, stderr, code = runCmd(t, "health", addr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, addr)
}

// A server bound to all interfaces with mutual TLS, as in a container: the
// check without arguments dials it on 127.0.0.1 with the same certificate
// settings; without a certificate it fails.
func TestHealthMutualTLS(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, grpcapp.GenerateCertificates(dir, []string{"orders"}, grpcapp.CertificateOptions{RootBits: 2048, HostBits: 2048}))
	free, err := grpcapp.FreeLocalhostAddress()
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(free)
	require.NoError(t, err)
	env := map[string]string{
		grpcapp.EnvApplicationTop:    "orders.Orders",
		"ORDERS_GRPC_SERVER_ADDRESS": "0.0.0.0:" + port,
		grpcapp.EnvKeyPath:           filepath.Join(dir, "orders", "orders.key"),
		grpcapp.EnvCertPath:          filepath.Join(dir, "orders", "orders.crt"),
		grpcapp.EnvRootCertPath:      filepath.Join(dir, "orders", "root.crt"),
	}
	cmd := exec.Command(binary, "server")
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
		t.Setenv(k, v)
	}
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// Starting takes well under a second; the bound only ends a hang.
	code, stderr := 1, ""
	for deadline := time.Now().Add(20 * time.Second); code != 0 && time.Now().Before(deadline); {
		_, stderr, code = runCmd(t, "health", "-timeout", "1s")
		if code != 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	require.Equal(t, 0, code, stderr)

	t.Setenv(grpcapp.EnvKeyPath, "")
	_, _, code = runCmd(t, "health", "-timeout", "1s")
	assert.Equal(t, 1, code)
}
