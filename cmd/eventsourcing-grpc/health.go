package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventsourcing-go/eventsourcing/grpcapp"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// healthCmd asks a server's standard gRPC health service whether it
// serves, once, within -timeout; it succeeds only for SERVING, which a
// server reports once it has started (its followers included) and stops
// reporting when it stops. Without ADDRESS it checks the application the
// same environment serves (APPLICATION_TOPIC and its
// <APP>_GRPC_SERVER_ADDRESS), so that a container's healthcheck needs no
// arguments; a server bound to all interfaces (0.0.0.0:port) is checked
// on 127.0.0.1, which the certificates of the ssl subcommand name. The TLS
// settings are those of the other subcommands, so it works under mutual
// TLS with the container's own certificate.
func healthCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	serverName := fs.String("server-name", "", "the name the server's certificate must carry (default: the address's host)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr := fs.Arg(0)
	env := recorder.NewEnv("", nil)
	if addr == "" {
		topic := os.Getenv(grpcapp.EnvApplicationTop)
		if topic == "" {
			return fmt.Errorf("usage: health [-timeout 3s] [ADDRESS] (without ADDRESS, %s names the application)", grpcapp.EnvApplicationTop)
		}
		reg, err := grpcapp.LookupApp(topic)
		if err != nil {
			return err
		}
		if addr, err = grpcapp.AddressOf(env, reg.App.Name()); err != nil {
			return err
		}
	}
	addr = loopbackFor(addr)
	cfg, err := grpcapp.ConfigFromEnv(env)
	if err != nil {
		return err
	}
	opts := []grpcapp.ClientOption{grpcapp.WithTLS(cfg.TLS), grpcapp.WithMaxAttempts(1)}
	if *serverName != "" {
		opts = append(opts, grpcapp.WithDialOptions(grpc.WithAuthority(*serverName)))
	}
	c, err := grpcapp.NewClient(addr, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	reply, err := healthpb.NewHealthClient(c.Conn()).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("health %s: no answer in %v: %w", addr, *timeout, err)
		}
		return fmt.Errorf("health %s: %w", addr, err)
	}
	if s := reply.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health %s: %s", addr, s)
	}
	_, err = fmt.Fprintln(stdout, "serving", addr)
	return err
}

// loopbackFor is the address a check on the same machine dials for a
// server address: a server bound to all interfaces is reached on loopback.
func loopbackFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}
