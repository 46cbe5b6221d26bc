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

// clusterFlags adds -cluster N: N nodes over one shared log, on the port
// of -addr and the N-1 following ones (free ports when -addr's port is 0).
// The first node starts as the leader. SIGUSR1 kills the leader, so that
// another node is elected; SIGUSR2 restarts the killed nodes as followers.
func (c *config) clusterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.cluster, "cluster", c.cluster,
		"run a cluster of this many nodes on -addr's port and the following ones (SIGUSR1 kills the leader, SIGUSR2 restarts killed nodes)")
}

// checkCluster refuses what a cluster cannot serve.
func (c config) checkCluster() error {
	switch {
	case c.cluster < 0:
		return fmt.Errorf("-cluster %d: want a number of nodes", c.cluster)
	case c.cluster > 1 && c.certFile != "":
		return errors.New("-cluster serves TLS with -tls (one generated CA for every node), not with -cert")
	}
	return nil
}

// serveCluster runs the cluster until ctx ends. It prints a connection
// string naming every node as a gossip seed, then one line per node.
func serveCluster(ctx context.Context, cfg config, opts []esdbtest.Option, logger *slog.Logger, stdout io.Writer) error {
	// Listen for the admin signals before anyone can learn the addresses.
	admin := make(chan os.Signal, 1)
	signal.Notify(admin, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(admin)

	cl, err := esdbtest.NewCluster(cfg.cluster, opts...)
	if err != nil {
		return err
	}
	nodes := cl.Nodes()
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = clientAddr(n.Addr())
	}
	query := "?tls=false"
	if cfg.tlsOn() {
		query = "?tls=true&tlsCAFile=" + url.QueryEscape(cl.CAFile())
		logger.Info("TLS CA written", "file", cl.CAFile())
	}
	// One write, so that a reader of the first line gets them all.
	var b strings.Builder
	b.WriteString("esdb://" + strings.Join(addrs, ",") + query + "\n")
	for i, n := range nodes {
		fmt.Fprintf(&b, "node %d: esdb://%s%s (%s)\n", i+1, addrs[i], query, n.State())
	}
	_, _ = io.WriteString(stdout, b.String())
	logger.Info("serving a cluster", "nodes", strings.Join(addrs, ","), "leader", cl.Leader().Addr(),
		"tls", cfg.tlsOn(), "data", cfg.data, "auth", cfg.users != "")

	for {
		select {
		case <-ctx.Done():
			logger.Info("stopping")
			if err := cl.Close(); err != nil {
				return fmt.Errorf("close: %w", err)
			}
			return nil
		case sig := <-admin:
			switch sig {
			case syscall.SIGUSR1:
				killed, err := cl.KillLeader()
				if err != nil {
					logger.Warn("no leader to kill")
					continue
				}
				leader := "none (no majority alive)"
				if l := cl.Leader(); l != nil {
					leader = l.Addr()
				}
				logger.Info("leader killed", "killed", killed.Addr(), "leader", leader)
			case syscall.SIGUSR2:
				for _, n := range nodes {
					if n.Alive() {
						continue
					}
					if err := n.Restart(); err != nil {
						logger.Error("restarting a node", "addr", n.Addr(), "err", err)
						continue
					}
					logger.Info("node restarted", "addr", n.Addr(), "state", n.State().String())
				}
			}
		}
	}
}

// clientAddr is the address a client on this machine dials for a listen
// address: an unspecified one (0.0.0.0, ::) is reached as localhost.
func clientAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
