package esdb

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/eventsourcing-go/eventsourcing/config"
)

// Configuration keys, each looked up as <APP>_KEY before KEY (config.Env).
const (
	// KeyURI is the connection string (required): esdb://host:2113?tls=false,
	// esdb://user:pass@host:2113, esdb+discover://host:2113, esdb://h1,h2,h3.
	KeyURI = "EVENTSTOREDB_URI"
	// KeyRootCertificates is the PEM text (not a file name) of the CA
	// certificates that signed the server's certificate.
	KeyRootCertificates = "EVENTSTOREDB_ROOT_CERTIFICATES"
	// KeyTrackingInMetadata enables the process and tracking recorders, which
	// carry tracking positions in event metadata (see the package doc).
	KeyTrackingInMetadata = "EVENTSTOREDB_TRACKING_IN_METADATA"

	// The successor product's names, accepted when ours are not set.
	keyURIAlias              = "KURRENTDB_URI"
	keyRootCertificatesAlias = "KURRENTDB_ROOT_CERTIFICATES"
)

// Config is the module's configuration.
type Config struct {
	// URI is the connection string.
	URI string
	// RootCertificates is PEM text of CA certificates; empty means the
	// system's roots (or the connection string's tlsCAFile).
	RootCertificates string
	// TrackingInMetadata enables the process and tracking recorders.
	TrackingInMetadata bool
	// Name is the application's name: the downstream name of tracking records.
	Name string
	// Logger receives the client's diagnostics and the module's warnings; nil
	// means slog.Default().
	Logger *slog.Logger
}

// ParseConfig reads the configuration from env. A missing or malformed
// setting is an error matching config.ErrConfiguration that names the keys.
func ParseConfig(env config.Env) (Config, error) {
	c := Config{Name: env.Name()}
	uri, ok := env.Lookup(KeyURI)
	if !ok {
		uri, ok = env.Lookup(keyURIAlias)
	}
	if !ok || strings.TrimSpace(uri) == "" {
		return Config{}, fmt.Errorf("%w: EventStoreDB connection string not set: set %s or %s (for example esdb://localhost:2113?tls=false)",
			config.ErrConfiguration, env.Prefixed(KeyURI), KeyURI)
	}
	c.URI = strings.TrimSpace(uri)
	if pem, ok := env.Lookup(KeyRootCertificates); ok {
		c.RootCertificates = pem
	} else if pem, ok := env.Lookup(keyRootCertificatesAlias); ok {
		c.RootCertificates = pem
	}
	var err error
	if c.TrackingInMetadata, err = env.Bool(KeyTrackingInMetadata, false); err != nil {
		return Config{}, err
	}
	// Parse now, so that a bad string fails at Open with the key's name
	// rather than at the first operation.
	if _, err := c.clientConfig(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", env.Prefixed(KeyURI), err)
	}
	return c, nil
}

// clientConfig parses the connection string and adds the root certificates.
// The string form accepts only a CA file (tlsCAFile), so PEM text goes into
// RootCAs after parsing.
func (c Config) clientConfig() (*esdbclient.Configuration, error) {
	cfg, err := esdbclient.ParseConnectionString(c.URI)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid EventStoreDB connection string: %w", config.ErrConfiguration, err)
	}
	if strings.TrimSpace(c.RootCertificates) != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.RootCertificates)) {
			return nil, fmt.Errorf("%w: %s holds no PEM certificate", config.ErrConfiguration, KeyRootCertificates)
		}
		cfg.RootCAs = pool
	}
	logger := c.Logger
	if logger == nil {
		logger = slog.Default()
	}
	cfg.Logger = clientLogger(logger)
	return cfg, nil
}

// clientLogger routes the client's printf-style log to slog. The client logs
// every failed call as an error although the module returns (and maps) each
// failure itself, so its errors become warnings and the rest debug records.
func clientLogger(l *slog.Logger) esdbclient.LoggingFunc {
	return func(level esdbclient.LogLevel, format string, args ...any) {
		lvl := slog.LevelDebug
		if level == esdbclient.LogError || level == esdbclient.LogWarn {
			lvl = slog.LevelWarn
		}
		if !l.Enabled(context.Background(), lvl) {
			return
		}
		l.Log(context.Background(), lvl, "eventstoredb client: "+fmt.Sprintf(format, args...))
	}
}
