package grpcapp

import (
	"fmt"
	"time"

	"github.com/eventsourcing-go/eventsourcing/config"
)

// DefaultMaxPullInterval is the default of MAX_PULL_INTERVAL.
//
// Deprecated: followers keep a subscription to each leader and need no
// periodic pull; the setting is read (and checked) for compatibility only.
const DefaultMaxPullInterval = 10 * time.Second

// Config is what a server or client of one application reads from its
// environment.
type Config struct {
	// Address is <APP>_GRPC_SERVER_ADDRESS, else GRPC_SERVER_ADDRESS.
	Address string
	// TLS holds the GRPC_SSL_* paths (never app-prefixed: one process has one
	// identity) and GRPC_INSECURE.
	TLS TLS
	// MaxPullInterval is <APP>_MAX_PULL_INTERVAL, else MAX_PULL_INTERVAL, in
	// seconds. It is accepted for compatibility with the reference's
	// deployments and changes nothing: followers subscribe.
	MaxPullInterval time.Duration
}

// ConfigFromEnv reads the gRPC settings of the application env names.
func ConfigFromEnv(env config.Env) (Config, error) {
	var c Config
	c.Address, _ = env.Lookup(EnvServerAddress)
	// The TLS paths are the process's identity, so they are looked up
	// without the application's prefix.
	plain := env.WithName("")
	c.TLS.KeyPath = plain.String(EnvKeyPath, "")
	c.TLS.CertificatePath = plain.String(EnvCertPath, "")
	c.TLS.RootCertificatePath = plain.String(EnvRootCertPath, "")
	var err error
	if c.TLS.Insecure, err = plain.Bool(EnvInsecure, false); err != nil {
		return c, err
	}
	if c.MaxPullInterval, err = env.Seconds(EnvMaxPullInterval, DefaultMaxPullInterval); err != nil {
		return c, err
	}
	return c, nil
}

// AddressOf returns the address of the named application from env
// (<NAME>_GRPC_SERVER_ADDRESS, else GRPC_SERVER_ADDRESS).
func AddressOf(env config.Env, name string) (string, error) {
	addr, ok := env.WithName(name).Lookup(EnvServerAddress)
	if !ok || addr == "" {
		return "", fmt.Errorf("%w: %s is not set", config.ErrConfiguration, env.WithName(name).Prefixed(EnvServerAddress))
	}
	return addr, nil
}
