package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// healthCmd asks the node at -addr for its supported methods, a call that
// needs no credentials, on EventStoreDB as on the emulator. It succeeds
// when the node answers within -timeout. Its defaults are those of the
// node the same environment starts (address, TLS), so that a container's
// healthcheck is just "esdb-emulator health".
func healthCmd(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("esdb-emulator health", flag.ContinueOnError)
	addr := fs.String("addr", probeAddr(cfg.addr), "address of the node")
	useTLS := fs.Bool("tls", cfg.tlsOn(), "the node serves TLS")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := probe(ctx, *addr, *useTLS); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, "serving", *addr)
	return err
}

// probeAddr is the address a probe on the same machine dials for a listen
// address: an unspecified host (all interfaces) is reached on loopback.
func probeAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// probe calls the node once.
func probe(ctx context.Context, addr string, useTLS bool) error {
	creds := insecure.NewCredentials()
	if useTLS {
		// A liveness probe of a node, often by an address its certificate
		// does not name (127.0.0.1 in a container): it checks that the
		// node answers, sends no credentials and trusts nothing it reads.
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	defer conn.Close()
	_, err = serverfeatures.NewServerFeaturesClient(conn).GetSupportedMethods(ctx, &shared.Empty{})
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%s: no answer in time: %w", addr, err)
		}
		return fmt.Errorf("%s: %w", addr, err)
	}
	return nil
}
