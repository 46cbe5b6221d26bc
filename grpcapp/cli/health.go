package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/grpcapp"
)

// health asks a server's standard gRPC health service whether it
// serves, once, within -timeout; it succeeds only for SERVING, which a
// server reports once it has started (its followers included) and stops
// reporting when it stops. Without ADDRESS it checks the application the
// same environment serves (APPLICATION_TOPIC, an application or
// projection, and its <APP>_GRPC_SERVER_ADDRESS), so that a container's healthcheck needs no
// arguments; a server bound to all interfaces (0.0.0.0:port) is checked
// on 127.0.0.1, which the certificates of the ssl subcommand name. The TLS
// settings are those of the other subcommands, so it works under mutual
// TLS with the container's own certificate.
func (c *command) health(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	serverName := fs.String("server-name", "", "the name the server's certificate must carry (default: the address's host)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr := fs.Arg(0)
	env := config.NewEnv("", nil)
	if addr == "" {
		topic := os.Getenv(grpcapp.EnvApplicationTop)
		if topic == "" {
			return fmt.Errorf("usage: health [-timeout 3s] [ADDRESS] (without ADDRESS, %s names the application)", grpcapp.EnvApplicationTop)
		}
		name := c.reg.LookupMember(topic)
		if _, ok := c.reg.MemberTopic(name); !ok {
			members, _ := c.reg.Topics()
			return fmt.Errorf("%w: no application or projection registered as %q (registered: %v)", eventsourcing.ErrArgument, topic, members)
		}
		var err error
		if addr, err = grpcapp.AddressOf(env, name); err != nil {
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
	client, err := grpcapp.NewClient(addr, opts...)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	reply, err := healthpb.NewHealthClient(client.Conn()).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("health %s: no answer in %v: %w", addr, *timeout, err)
		}
		return fmt.Errorf("health %s: %w", addr, err)
	}
	if s := reply.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health %s: %s", addr, s)
	}
	_, err = fmt.Fprintln(c.stdout, "serving", addr)
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
