package grpcapp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"

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
	// name every host the peers dial (cmd/eventsourcing-grpc ssl issues such
	// certificates).
	CertificatePath string
	// RootCertificatePath is the CA that signed every peer
	// (GRPC_SSL_ROOT_CERTIFICATE_PATH).
	RootCertificatePath string
	// Insecure allows plaintext on any address (GRPC_INSECURE). Only for
	// networks that are private by other means, such as a service mesh that
	// already encrypts.
	Insecure bool
}

// Settings of the gRPC layer, read through recorder.Env (so that
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

var localhostRE = regexp.MustCompile(`^localhost:[0-9]+$`)

// IsLocalhost reports whether addr is textually localhost:<port>, the only
// form served and dialled without TLS: such a server listens on the loopback
// interface only, so nothing outside the machine can reach its plaintext.
func IsLocalhost(addr string) bool { return localhostRE.MatchString(addr) }

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
	if IsLocalhost(addr) && !t.complete() || t.Insecure {
		return insecure.NewCredentials(), nil
	}
	if !t.complete() {
		return nil, fmt.Errorf("%w: dialling %s needs mutual TLS: %w", ErrInsecureAddress, addr, t.missing())
	}
	pair, pool, err := t.load()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS12,
	}), nil
}

// listen binds addr. A plaintext localhost:<port> binds the loopback
// interface only (net.Listen resolves the name), never the wildcard address.
func listen(addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("grpcapp: listen %s: %w", addr, err)
	}
	if IsLocalhost(addr) {
		if ta, ok := lis.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
			lis.Close()
			return nil, fmt.Errorf("%w: %s resolved to %s", ErrInsecureAddress, addr, ta.IP)
		}
	}
	return lis, nil
}
