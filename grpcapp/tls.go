package grpcapp

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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// TLS names the PEM files of one process's identity for mutual TLS. Each
// process uses one key pair as both its server and its client identity, and
// trusts peers whose certificates the root CA signed.
type TLS struct {
	// KeyPath is the private key (GRPC_SSL_PRIVATE_KEY_PATH).
	KeyPath string
	// CertificatePath is the certificate (GRPC_SSL_CERTIFICATE_PATH). Go
	// verifies host names against subjectAltName entries only, so it must
	// name every host the peers dial (the ssl subcommand of grpcapp/cli
	// issues such certificates).
	CertificatePath string
	// RootCertificatePath is the CA that signed every peer
	// (GRPC_SSL_ROOT_CERTIFICATE_PATH).
	RootCertificatePath string
	// Insecure allows plaintext on any address (GRPC_INSECURE). Only for
	// networks that are private by other means, such as a service mesh that
	// already encrypts.
	Insecure bool
}

// Settings of the gRPC layer, read through config.Env (so that
// ORDERS_GRPC_SERVER_ADDRESS wins over GRPC_SERVER_ADDRESS).
const (
	EnvServerAddress   = "GRPC_SERVER_ADDRESS"
	EnvMaxPullInterval = "MAX_PULL_INTERVAL"
	EnvKeyPath         = "GRPC_SSL_PRIVATE_KEY_PATH"
	EnvCertPath        = "GRPC_SSL_CERTIFICATE_PATH"
	EnvRootCertPath    = "GRPC_SSL_ROOT_CERTIFICATE_PATH"
	EnvInsecure        = "GRPC_INSECURE"
	EnvApplicationTop  = "APPLICATION_TOPIC"
	EnvSystemTopic     = "SYSTEM_TOPIC"
)

// IsLocalhost reports whether addr is a loopback address with a port —
// localhost:<port>, 127.0.0.1:<port> (any 127.x.y.z) or [::1]:<port> — the
// only addresses served and dialled without TLS: such a server listens on
// the loopback interface only, so nothing outside the machine can reach its
// plaintext.
func IsLocalhost(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !validPort(port) {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isLocalhostName reports whether addr is textually localhost:<port>.
func isLocalhostName(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && host == "localhost" && IsLocalhost(addr)
}

func validPort(port string) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535 && port != "" && port[0] != '+' && port[0] != '-'
}

// checkAddress reports an address that is not host:port with a numeric port
// in 0..65535 as invalid. Targets with a gRPC scheme ("dns:///orders:50051",
// "unix:/path") are the resolver's business and are left alone.
func checkAddress(addr string) error {
	if strings.Contains(addr, ":///") || strings.HasPrefix(addr, "unix:") || strings.HasPrefix(addr, "unix-abstract:") {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w %q: %w (want host:port, such as localhost:50051)", ErrInvalidAddress, addr, err)
	}
	if !validPort(port) {
		return fmt.Errorf("%w %q: port %q is not a number in 0..65535", ErrInvalidAddress, addr, port)
	}
	return nil
}

func (t TLS) complete() bool {
	return t.KeyPath != "" && t.CertificatePath != "" && t.RootCertificatePath != ""
}

func (t TLS) missing() error {
	var missing []error
	for _, f := range []struct{ env, v string }{
		{EnvKeyPath, t.KeyPath}, {EnvCertPath, t.CertificatePath}, {EnvRootCertPath, t.RootCertificatePath},
	} {
		if f.v == "" {
			missing = append(missing, fmt.Errorf("%s is not set", f.env))
		}
	}
	return errors.Join(missing...)
}

// load reads the key pair and the root CA.
func (t TLS) load() (tls.Certificate, *x509.CertPool, error) {
	pair, err := tls.LoadX509KeyPair(t.CertificatePath, t.KeyPath)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("grpcapp: key pair %s, %s: %w", t.CertificatePath, t.KeyPath, err)
	}
	pem, err := os.ReadFile(t.RootCertificatePath)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("grpcapp: root certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("grpcapp: root certificate %s: no PEM certificate found", t.RootCertificatePath)
	}
	return pair, pool, nil
}

// serverCredentials returns the credentials a server at addr uses: plaintext
// for localhost:<port> (or with Insecure), otherwise mutual TLS that demands
// a client certificate signed by the root CA.
func (t TLS) serverCredentials(addr string) (credentials.TransportCredentials, error) {
	if err := checkAddress(addr); err != nil {
		return nil, err
	}
	if IsLocalhost(addr) && !t.complete() || t.Insecure {
		return insecure.NewCredentials(), nil
	}
	if !t.complete() {
		return nil, fmt.Errorf("%w: serving %s needs mutual TLS: %w", ErrInsecureAddress, addr, t.missing())
	}
	pair, pool, err := t.load()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}), nil
}

// clientCredentials returns the credentials for dialling addr, by the same
// rule as serverCredentials.
func (t TLS) clientCredentials(addr string) (credentials.TransportCredentials, error) {
	if err := checkAddress(addr); err != nil {
		return nil, err
	}
	if IsLocalhost(addr) && !t.complete() || t.Insecure {
		return explainedClientCredentials{TransportCredentials: insecure.NewCredentials()}, nil
	}
	if !t.complete() {
		return nil, fmt.Errorf("%w: dialling %s needs mutual TLS: %w", ErrInsecureAddress, addr, t.missing())
	}
	pair, pool, err := t.load()
	if err != nil {
		return nil, err
	}
	return explainedClientCredentials{TransportCredentials: credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS12,
	}), tls: true}, nil
}

// listen binds addr. A plaintext localhost:<port> binds the loopback
// interface only (net.Listen resolves the name), never the wildcard address.
func listen(addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("grpcapp: listen %s: %w", addr, err)
	}
	if isLocalhostName(addr) {
		if ta, ok := lis.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
			lis.Close()
			return nil, fmt.Errorf("%w: %s resolved to %s", ErrInsecureAddress, addr, ta.IP)
		}
	}
	return lis, nil
}

// explainedClientCredentials makes a refused connection say why on the
// client: a failed handshake names the server and what to check, and a
// connection the server closes before its first byte (it refused this
// client's certificate after the handshake, or it wants TLS from a
// plaintext client) says so instead of "broken pipe" or "EOF".
type explainedClientCredentials struct {
	credentials.TransportCredentials
	tls bool
}

func (c explainedClientCredentials) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		hint := "check that the server serves TLS and that its certificate is signed by the root CA this client trusts (GRPC_SSL_ROOT_CERTIFICATE_PATH) and names the host dialled"
		if errors.As(err, new(tls.RecordHeaderError)) || strings.Contains(err.Error(), "first record does not look like a TLS handshake") {
			hint = "the server answered in plaintext: it serves without TLS (a localhost address without GRPC_SSL_* files, or GRPC_INSECURE)"
		}
		return nil, nil, fmt.Errorf("grpcapp: TLS handshake with %s failed (%s): %w", authority, hint, err)
	}
	return &explainedConn{Conn: conn, authority: authority, tls: c.tls}, info, nil
}

func (c explainedClientCredentials) Clone() credentials.TransportCredentials {
	return explainedClientCredentials{TransportCredentials: c.TransportCredentials.Clone(), tls: c.tls}
}

// explainedConn annotates the errors of a connection until the server's
// first byte arrives: an error before it means the server refused the
// connection.
type explainedConn struct {
	net.Conn
	authority string
	tls       bool
	answered  atomic.Bool
}

func (c *explainedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.answered.Store(true)
	}
	if err != nil && n == 0 && !c.answered.Load() {
		err = c.explain(err)
	}
	return n, err
}

func (c *explainedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil && !c.answered.Load() {
		err = c.explain(err)
	}
	return n, err
}

func (c *explainedConn) explain(err error) error {
	if c.tls {
		return fmt.Errorf("grpcapp: TLS handshake with %s failed: the server refused this client's certificate and closed the connection (the certificate must be signed by the root CA the server trusts, its GRPC_SSL_ROOT_CERTIFICATE_PATH; a certificate of another CA is not even presented, so the server says \"certificate required\"): %w", c.authority, err)
	}
	return fmt.Errorf("grpcapp: %s closed the connection before answering: the server may require TLS, and this client dials in plaintext (set GRPC_SSL_PRIVATE_KEY_PATH, GRPC_SSL_CERTIFICATE_PATH and GRPC_SSL_ROOT_CERTIFICATE_PATH to dial with mutual TLS): %w", c.authority, err)
}

// loggedServerCredentials logs the handshakes a TLS server refuses, at a
// limited rate, so that a client with the wrong certificate or without TLS
// shows on the server too.
type loggedServerCredentials struct {
	credentials.TransportCredentials
	log *refusals
}

func (c loggedServerCredentials) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	// A connection closed before its first byte (a TCP probe) is not a
	// refused handshake.
	if err != nil && !errors.Is(err, io.EOF) {
		c.log.refused(raw.RemoteAddr(), err)
	}
	return conn, info, err
}

func (c loggedServerCredentials) Clone() credentials.TransportCredentials {
	return loggedServerCredentials{TransportCredentials: c.TransportCredentials.Clone(), log: c.log}
}

// Refused handshakes are logged at most refusalBurst times per
// refusalWindow; the next line after a quiet spell counts those left out.
const (
	refusalBurst  = 5
	refusalWindow = time.Minute
)

type refusals struct {
	logger     *slog.Logger
	mu         sync.Mutex
	start      time.Time
	logged     int
	suppressed int
}

func (r *refusals) refused(remote net.Addr, err error) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.start) >= refusalWindow {
		r.start, r.logged = now, 0
	}
	if r.logged >= refusalBurst {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	r.logged++
	last := r.logged == refusalBurst
	suppressed := r.suppressed
	r.suppressed = 0
	r.mu.Unlock()
	attrs := []any{"remote", remote.String(), "error", err.Error()}
	if suppressed > 0 {
		attrs = append(attrs, "not_logged_since_last", suppressed)
	}
	if last {
		attrs = append(attrs, "next", fmt.Sprintf("at most %d lines per %v", refusalBurst, refusalWindow))
	}
	r.logger.Warn("refused a TLS handshake (a client without TLS, or with a certificate the root CA did not sign)", attrs...)
}
