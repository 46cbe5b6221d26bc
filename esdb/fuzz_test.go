package esdb_test

import (
	"errors"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/esdb"
)

// FuzzParseConfig parses arbitrary connection strings, root certificates
// and settings: a configuration or an error matching ErrConfiguration,
// never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add("esdb://localhost:2113?tls=false", "", "")
	f.Add("esdb+discover://admin:changeit@node1:2113,node2:2113?tls=true&nodePreference=leader&keepAliveInterval=-1", "", "yes")
	f.Add("esdb://[::1]:2113?tls=false&connectionName=x&maxDiscoverAttempts=0&defaultDeadline=10", "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n", "0")
	f.Add("esdb://:@:/?=&", "", "sometimes")
	f.Add("http://localhost:2113", "", "")
	f.Add("esdb://host:99999?tlsVerifyCert=false&gossipTimeout=abc", "", "")
	f.Fuzz(func(t *testing.T, uri, pem, tracking string) {
		kv := map[string]string{esdb.KeyURI: uri, esdb.KeyTrackingInMetadata: tracking}
		if pem != "" {
			kv[esdb.KeyRootCertificates] = pem
		}
		c, err := esdb.ParseConfig(config.NewEnvFrom("App", kv, nil))
		if err != nil {
			if !errors.Is(err, config.ErrConfiguration) {
				t.Fatalf("error does not match ErrConfiguration: %v", err)
			}
			return
		}
		if c.URI == "" {
			t.Fatal("accepted an empty connection string")
		}
	})
}
