// Command esdb-emulator serves an in-process EventStoreDB-compatible gRPC
// node (package esdbtest) for people and for other languages' clients.
//
//	esdb-emulator -addr 127.0.0.1:2113                 # insecure, in memory
//	esdb-emulator -tls -users admin:changeit -data ./d # TLS, auth, on disk
//
// It prints the connection string (and the CA file with -tls) and stops
// gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/eventsourcing-go/eventsourcing/esdb/esdbtest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "esdb-emulator:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("esdb-emulator", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:2113", "listen address")
	useTLS := fs.Bool("tls", false, "serve TLS with a generated CA (its file is printed)")
	users := fs.String("users", "", "basic-auth users as login:password[,login:password...]")
	data := fs.String("data", "", "directory that keeps the log across restarts (default: memory only)")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	opts := []esdbtest.Option{esdbtest.WithAddr(*addr), esdbtest.WithLogger(logger)}
	if *useTLS {
		opts = append(opts, esdbtest.WithTLS())
	}
	if *users != "" {
		m, err := parseUsers(*users)
		if err != nil {
			return err
		}
		opts = append(opts, esdbtest.WithUsers(m))
	}
	if *data != "" {
		opts = append(opts, esdbtest.WithDataDir(*data))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	srv, err := esdbtest.NewServer(opts...)
	if err != nil {
		return err
	}
	fmt.Println(srv.URI())
	if *useTLS {
		logger.Info("TLS CA written", "file", srv.CAFile())
	}
	<-ctx.Done()
	logger.Info("stopping")
	if err := srv.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
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
