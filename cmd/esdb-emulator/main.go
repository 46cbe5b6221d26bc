// Command esdb-emulator serves an in-process EventStoreDB-compatible gRPC
// node (package esdbtest) for people, for other languages' clients and as a
// container that stands in for an EventStoreDB node.
//
//	esdb-emulator -addr 127.0.0.1:2113                 # insecure, in memory
//	esdb-emulator -tls -users admin:changeit -data ./d # TLS (generated CA), auth, on disk
//	esdb-emulator -cert node.crt -key node.key -ca ca  # TLS with given certificates
//	esdb-emulator -cluster 3 [-tls]                    # three nodes on 2113-2115 over one log
//	esdb-emulator health [-addr 127.0.0.1:2113]        # exit 0 when the node serves, else 1
//
// With -cluster N the emulator runs N nodes over one shared log, on the
// port of -addr and the following ones, and prints a connection string
// naming them all as gossip seeds. Gossip reports the leader and the
// followers; followers answer NotLeader as EventStoreDB's do. SIGUSR1
// kills the leader (another node is elected while a majority lives) and
// SIGUSR2 restarts the killed nodes as followers.
//
// Every flag can also be set by the environment variable EventStoreDB reads
// for the same setting, so that a container started with EventStoreDB's
// settings starts the emulator the same way (a flag wins over its variable):
//
//	EVENTSTORE_INSECURE                        true: no TLS; false: TLS (a generated CA without the files below)
//	EVENTSTORE_CERTIFICATE_FILE                -cert, the node's certificate (PEM, chain allowed)
//	EVENTSTORE_CERTIFICATE_PRIVATE_KEY_FILE    -key, its private key (PEM)
//	EVENTSTORE_TRUSTED_ROOT_CERTIFICATES_PATH  -ca, a CA file or a directory of them; client certificates must chain to it
//	EVENTSTORE_NODE_IP, EVENTSTORE_NODE_PORT   -addr (also EVENTSTORE_HTTP_IP, EVENTSTORE_HTTP_PORT; default 127.0.0.1:2113)
//	EVENTSTORE_DB                              -data, the directory that keeps the log across restarts
//	EVENTSTORE_MEM_DB                          true: memory only, whatever EVENTSTORE_DB says
//	EVENTSTORE_DEFAULT_ADMIN_PASSWORD          enables authentication: users admin and ops (also
//	EVENTSTORE_DEFAULT_OPS_PASSWORD            ..._OPS_PASSWORD; the one not given is "changeit")
//	EVENTSTORE_LOG_LEVEL                       Verbose or Debug: -v
//	EVENTSTORE_RUN_PROJECTIONS                 -run-projections: None, System or All
//	EVENTSTORE_CLUSTER_SIZE                    must be 1: run a cluster with -cluster
//
// Other EVENTSTORE_* variables are reported once and ignored. The node
// prints its connection string and stops gracefully on SIGINT or SIGTERM
// (flushing the data file, so a restarted container keeps its events).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run runs the node, or the health subcommand, and returns the exit status.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	cfg, notes, err := configFromEnv(environ)
	if err != nil {
		fmt.Fprintln(stderr, "esdb-emulator:", err)
		return 2
	}
	if len(args) > 0 && args[0] == "health" {
		if err := healthCmd(ctx, cfg, args[1:], stdout); err != nil {
			fmt.Fprintln(stderr, "esdb-emulator health:", err)
			return 1
		}
		return 0
	}
	if err := cfg.parseFlags(args, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "esdb-emulator:", err)
		return 2
	}
	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	for _, n := range notes {
		logger.Warn(n)
	}
	if err := serve(ctx, cfg, logger, stdout); err != nil {
		fmt.Fprintln(stderr, "esdb-emulator:", err)
		return 1
	}
	return 0
}

// parseFlags applies the command line over the settings of the environment.
func (c *config) parseFlags(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("esdb-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", c.addr, "listen address")
	fs.BoolVar(&c.generateTLS, "tls", c.generateTLS, "serve TLS with a generated CA (its file is printed)")
	fs.StringVar(&c.certFile, "cert", c.certFile, "serve TLS with this certificate file (PEM)")
	fs.StringVar(&c.keyFile, "key", c.keyFile, "the private key file of -cert (PEM)")
	fs.StringVar(&c.caPath, "ca", c.caPath, "trusted root certificates: a PEM file or a directory of them (with -cert)")
	fs.StringVar(&c.users, "users", c.users, "basic-auth users as login:password[,login:password...]")
	fs.StringVar(&c.data, "data", c.data, "directory that keeps the log across restarts (default: memory only)")
	fs.BoolVar(&c.verbose, "v", c.verbose, "debug logging")
	c.projectionFlags(fs)
	c.clusterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.checkCluster(); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (subcommands: health)", fs.Arg(0))
	}
	if (c.certFile == "") != (c.keyFile == "") {
		return errors.New("-cert and -key go together")
	}
	if c.caPath != "" && c.certFile == "" {
		return errors.New("-ca needs -cert and -key")
	}
	return nil
}

// serve runs the node until ctx ends.
func serve(ctx context.Context, cfg config, logger *slog.Logger, stdout io.Writer) error {
	opts := append([]esdbtest.Option{esdbtest.WithAddr(cfg.addr), esdbtest.WithLogger(logger)}, cfg.projectionOptions()...)
	var tlsCfg *tlsFiles
	switch {
	case cfg.certFile != "":
		// The node serves plain gRPC on a loopback port behind a TLS
		// front on the listen address, which presents the given files.
		t, err := loadTLSFiles(cfg.certFile, cfg.keyFile, cfg.caPath)
		if err != nil {
			return err
		}
		tlsCfg = t
		opts[0] = esdbtest.WithAddr("127.0.0.1:0")
	case cfg.generateTLS:
		opts = append(opts, esdbtest.WithTLS())
	}
	if cfg.users != "" {
		m, err := parseUsers(cfg.users)
		if err != nil {
			return err
		}
		opts = append(opts, esdbtest.WithUsers(m))
	}
	if cfg.data != "" {
		opts = append(opts, esdbtest.WithDataDir(cfg.data))
	}

	if cfg.cluster > 1 {
		return serveCluster(ctx, cfg, opts, logger, stdout)
	}
	srv, err := esdbtest.NewServer(opts...)
	if err != nil {
		return err
	}
	addr := srv.Addr()
	var front *tlsFront
	if tlsCfg != nil {
		if front, err = listenTLS(cfg.addr, addr.String(), tlsCfg.config, logger); err != nil {
			return errors.Join(err, srv.Close())
		}
		addr = front.Addr()
	}
	caFile := srv.CAFile()
	if tlsCfg != nil {
		caFile = tlsCfg.caFile
	}
	fmt.Fprintln(stdout, connectionString(addr, cfg.tlsOn(), caFile))
	if caFile != "" && cfg.generateTLS && tlsCfg == nil {
		logger.Info("TLS CA written", "file", caFile)
	}
	logger.Info("serving", "addr", addr.String(), "tls", cfg.tlsOn(), "data", cfg.data, "auth", cfg.users != "")

	<-ctx.Done()
	logger.Info("stopping")
	if front != nil {
		front.StopAccepting()
	}
	err = srv.Close()
	if front != nil {
		front.Close()
	}
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// connectionString is the URI a client on this machine dials: an
// unspecified listen address (0.0.0.0, ::) is reached as localhost.
func connectionString(addr net.Addr, useTLS bool, caFile string) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		host, port = addr.String(), ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	uri := "esdb://" + net.JoinHostPort(host, port)
	switch {
	case !useTLS:
		return uri + "?tls=false"
	case caFile != "":
		return uri + "?tls=true&tlsCAFile=" + url.QueryEscape(caFile)
	default:
		return uri + "?tls=true"
	}
}

func parseUsers(s string) (map[string]string, error) {
	m := make(map[string]string)
	for pair := range strings.SplitSeq(s, ",") {
		login, pass, ok := strings.Cut(pair, ":")
		if !ok || login == "" {
			return nil, errors.New("-users wants login:password pairs separated by commas")
		}
		m[login] = pass
	}
	return m, nil
}
