package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// tlsFiles is a server TLS configuration read from certificate files.
type tlsFiles struct {
	config *tls.Config
	// caFile is the one trusted root file, for the printed connection
	// string; empty when the roots are a directory of several.
	caFile string
}

// loadTLSFiles reads the node's certificate and key, and the trusted roots
// (a PEM file, or a directory whose files are PEM certificates, as
// EventStoreDB's trusted root certificates path). Client certificates are
// optional; one that is presented must chain to the trusted roots.
func loadTLSFiles(certFile, keyFile, caPath string) (*tlsFiles, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	t := &tlsFiles{config: &tls.Config{
		Certificates: []tls.Certificate{cert},
		// gRPC clients insist on HTTP/2 being negotiated.
		NextProtos: []string{"h2"},
		MinVersion: tls.VersionTLS12,
	}}
	if caPath == "" {
		return t, nil
	}
	files := []string{caPath}
	if fi, err := os.Stat(caPath); err != nil {
		return nil, fmt.Errorf("trusted root certificates: %w", err)
	} else if fi.IsDir() {
		entries, err := os.ReadDir(caPath)
		if err != nil {
			return nil, fmt.Errorf("trusted root certificates: %w", err)
		}
		files = files[:0]
		for _, e := range entries {
			if e.Type().IsRegular() {
				files = append(files, filepath.Join(caPath, e.Name()))
			}
		}
	}
	pool := x509.NewCertPool()
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("trusted root certificates: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("trusted root certificates: %s holds no PEM certificate", f)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("trusted root certificates: %s holds no files", caPath)
	}
	if len(files) == 1 {
		t.caFile = files[0]
	}
	t.config.ClientCAs = pool
	t.config.ClientAuth = tls.VerifyClientCertIfGiven
	return t, nil
}

// tlsFront accepts TLS connections and relays each, decrypted, to a plain
// gRPC server on a loopback address.
type tlsFront struct {
	lis     net.Listener
	backend string
	log     *slog.Logger

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// handshakeTimeout bounds a client's TLS handshake.
const handshakeTimeout = 10 * time.Second

func listenTLS(addr, backend string, cfg *tls.Config, log *slog.Logger) (*tlsFront, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	f := &tlsFront{lis: tls.NewListener(lis, cfg), backend: backend, log: log, conns: make(map[net.Conn]struct{})}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

// Addr is the address the front listens on.
func (f *tlsFront) Addr() net.Addr { return f.lis.Addr() }

func (f *tlsFront) accept() {
	defer f.wg.Done()
	for {
		c, err := f.lis.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				f.log.Error("accept", "err", err)
			}
			return
		}
		if !f.track(c) {
			_ = c.Close()
			return
		}
		f.wg.Add(1)
		go f.relay(c.(*tls.Conn))
	}
}

// track records an open connection, or reports false once the front is
// closing.
func (f *tlsFront) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *tlsFront) untrack(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		delete(f.conns, c)
		_ = c.Close()
	}
}

// relay copies both ways between a client and the backend until either
// side closes, then closes both.
func (f *tlsFront) relay(c *tls.Conn) {
	defer f.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	err := c.HandshakeContext(ctx)
	cancel()
	if err != nil {
		f.log.Debug("TLS handshake", "remote", c.RemoteAddr().String(), "err", err)
		f.untrack(c)
		return
	}
	b, err := net.DialTimeout("tcp", f.backend, handshakeTimeout)
	if err != nil {
		f.log.Error("dial node", "err", err)
		f.untrack(c)
		return
	}
	if !f.track(b) {
		f.untrack(c, b)
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst io.Writer, src io.Reader) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(b, c)
	go pipe(c, b)
	<-done
	f.untrack(c, b) // ends the other copy
	<-done
}

// StopAccepting closes the listener; relayed connections stay open, so
// that the node's goodbye reaches its clients.
func (f *tlsFront) StopAccepting() { _ = f.lis.Close() }

// Close stops accepting, closes every relayed connection and waits for
// the relays to end.
func (f *tlsFront) Close() {
	f.StopAccepting()
	f.mu.Lock()
	for c := range f.conns {
		_ = c.Close()
	}
	f.conns = nil
	f.mu.Unlock()
	f.wg.Wait()
}
