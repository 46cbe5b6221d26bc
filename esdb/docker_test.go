package esdb_test

// The tests on containers: the emulator's image, built from this repository
// as `make images` builds it, stands in for EventStoreDB in Docker. They run
// whenever a Docker engine answers and skip with one line otherwise.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ory/dockertest/v3/docker"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder"
	"github.com/eventsourcing-go/eventsourcing/recorder/recordertest"
)

// The conformance suite against the emulator in a container: a fresh
// container per case, as the suite wants empty stores, reached through the
// engine's port mapping like any node in Docker.
func TestDockerConformance(t *testing.T) {
	dockerPool(t)
	buildEmulator(t)
	f := conformanceFactory("eventstoredb on the emulator's container", true, func(tb testing.TB) string {
		return startTestNode(tb, nodeOptions{env: []string{"EVENTSTORE_MEM_DB=true"}}).uri
	})
	// Every round of the race cases is a round trip through the port
	// mapping; fewer rounds keep the suite's time within reason.
	f.RaceRounds = 10
	// Open waits for a container, which a busy engine may take long to
	// start: the suite's bound on every wait must exceed startNode's.
	f.Patience = 2 * nodeStartBound
	recordertest.Run(t, f)
}

// A live subscription across a container restart and across a new
// container on the same data volume loses and duplicates nothing: it
// resumes after the last position it delivered, and the node keeps every
// event on its volume.
func TestDockerRestartUnderSubscription(t *testing.T) {
	pool := dockerPool(t)
	volume := "esdb-test-" + randomHex(6)
	t.Cleanup(func() { _ = pool.Client.RemoveVolumeWithOptions(docker.RemoveVolumeOptions{Name: volume, Force: true}) })
	opts := nodeOptions{mounts: []string{volume + ":/data"}, hostPort: freePort(t)}
	n := startTestNode(t, opts)

	r := application(t, n.uri)
	ctx := t.Context()
	sub, err := r.Subscribe(ctx, recorder.Start(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	received := make(chan recorder.Notification)
	failed := make(chan error, 1)
	go func() {
		for {
			note, err := sub.Next(ctx)
			if err != nil {
				failed <- err
				return
			}
			received <- note
		}
	}()

	var want []int64
	// aggregates saves n aggregates of three events each, retrying a save
	// the node refused while it was away (a new call writes new aggregates,
	// so a retry never duplicates).
	aggregates := func(n int) {
		for range n {
			id := uuid.NewString()
			batch := []recorder.StoredEvent{
				{OriginatorID: id, OriginatorVersion: 0, Topic: "Created", State: []byte("1")},
				{OriginatorID: id, OriginatorVersion: 1, Topic: "Updated", State: []byte("2")},
				{OriginatorID: id, OriginatorVersion: 2, Topic: "Updated", State: []byte("3")},
			}
			for {
				ids, err := r.InsertEvents(ctx, batch)
				if err == nil {
					want = append(want, ids...)
					break
				}
				require.ErrorIs(t, err, recorder.ErrOperational)
				select {
				case <-ctx.Done():
					t.Fatal(ctx.Err())
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
	}
	var got []int64
	receiveAll := func() {
		t.Helper()
		for len(got) < len(want) {
			select {
			case note := <-received:
				got = append(got, note.ID)
			case err := <-failed:
				t.Fatalf("the subscription ended: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatalf("received %d of %d notifications; the subscription hangs", len(got), len(want))
			}
		}
		require.Equal(t, want, got, "every event once, in order")
	}

	aggregates(10)
	receiveAll()

	// What docker restart does with the image's stop signal: SIGTERM, the
	// node flushes its log and exits, then the same container starts again.
	// (The containers of dockertest have another stop signal, so docker
	// restart itself would kill the node after its timeout.)
	id := n.res.Container.ID
	require.NoError(t, pool.Client.KillContainer(docker.KillContainerOptions{ID: id, Signal: docker.SIGTERM, Context: ctx}))
	code, err := pool.Client.WaitContainerWithContext(id, ctx)
	require.NoError(t, err)
	require.Equal(t, 0, code, "the node stops cleanly on SIGTERM")
	require.NoError(t, pool.Client.StartContainerWithContext(id, nil, ctx))
	require.NoError(t, n.waitServing(ctx))
	aggregates(10)
	receiveAll()

	// A new container on the same volume and port.
	n.purge()
	startTestNode(t, opts)
	aggregates(10)
	receiveAll()
	last, ok, err := r.MaxNotificationID(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, want[len(want)-1], last)

	select {
	case note := <-received:
		t.Fatalf("a notification nobody wrote: %+v", note)
	case err := <-failed:
		t.Fatalf("the subscription ended: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
}

// The emulator's container with EventStoreDB's TLS settings: a node
// certificate, its key and a trusted root from files on a read-only mount,
// and the default users' passwords. The module connects with the root in
// the connection string and a login, and the image's health command finds
// the node serving TLS from the same environment.
func TestDockerTLS(t *testing.T) {
	dockerPool(t)
	certs := writeNodeCertificates(t)
	n := startTestNode(t, nodeOptions{
		env: []string{
			"EVENTSTORE_CERTIFICATE_FILE=/certs/node.crt",
			"EVENTSTORE_CERTIFICATE_PRIVATE_KEY_FILE=/certs/node.key",
			"EVENTSTORE_TRUSTED_ROOT_CERTIFICATES_PATH=/certs/ca",
			"EVENTSTORE_DEFAULT_ADMIN_PASSWORD=s3cret",
			"EVENTSTORE_MEM_DB=true",
			"EVENTSTORE_RUN_PROJECTIONS=All",
		},
		mounts: []string{certs + ":/certs:ro"},
	})
	uri := "esdb://admin:s3cret@" + n.addr + "?tls=true&tlsCAFile=" + url.QueryEscape(filepath.Join(certs, "ca", "ca.crt"))
	r := application(t, uri)
	id := uuid.NewString()
	ids, err := r.InsertEvents(t.Context(), []recorder.StoredEvent{{OriginatorID: id, OriginatorVersion: 0, Topic: "Created", State: []byte("x")}})
	require.NoError(t, err)
	ns, err := r.SelectNotifications(t.Context(), recorder.NotificationQuery{After: recorder.After(ids[0]), Inclusive: true, Limit: 1})
	require.NoError(t, err)
	require.Len(t, ns, 1)
	require.Equal(t, id, ns[0].OriginatorID)

	// Without the login the node refuses.
	anonymous := application(t, "esdb://"+n.addr+"?tls=true&tlsCAFile="+url.QueryEscape(filepath.Join(certs, "ca", "ca.crt")))
	_, err = anonymous.InsertEvents(t.Context(), []recorder.StoredEvent{{OriginatorID: uuid.NewString(), OriginatorVersion: 0, Topic: "Created"}})
	require.Error(t, err)

	// The image's health command (no flags: it reads the TLS settings).
	code, out, err := n.exec(t.Context(), "/usr/local/bin/esdb-emulator", "health")
	require.NoError(t, err)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "serving 127.0.0.1:2113")
}

// writeNodeCertificates writes a CA (ca/ca.crt) and a node certificate for
// localhost and 127.0.0.1 (node.crt, node.key) into a directory the image's
// user can read, and returns it.
func writeNodeCertificates(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "ca"), 0o755))
	issue := func(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		require.NoError(t, err)
		cert, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	valid := time.Now().Add(-time.Hour)
	ca, caKey, caPEM := issue(&x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: valid, NotAfter: valid.Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}, nil, nil)
	_, key, nodePEM := issue(&x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "eventstoredb"},
		NotBefore: valid, NotAfter: valid.Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "eventstoredb"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}, ca, caKey)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	// 0644: the container's user is not this one (a test key, never a real one).
	for name, data := range map[string][]byte{
		"ca/ca.crt": caPEM,
		"node.crt":  nodePEM,
		"node.key":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
	}
	return dir
}
