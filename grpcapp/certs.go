package grpcapp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CertificateOptions configure GenerateCertificates.
type CertificateOptions struct {
	// RootBits and HostBits are the RSA key sizes (default 4096 and 2048,
	// as the reference's make ssl).
	RootBits, HostBits int
	// ExtraDNS and ExtraIPs are added to every host certificate's
	// subjectAltName, beside the host itself (default: localhost and
	// 127.0.0.1, so that the certificates also work on one machine).
	ExtraDNS []string
	ExtraIPs []net.IP
	// RootName is the root CA's common name (default: "eventsourcing-grpc
	// root CA" and a random suffix, so that each CA issued has its own name
	// and an error about an unknown authority says which one it saw).
	RootName string
}

// GenerateCertificates writes a root CA and one certificate per host into
// dir, in the reference's layout:
//
//	dir/root/root.crt
//	dir/<host>/<host>.key, dir/<host>/<host>.crt, dir/<host>/root.crt
//
// The root is self-signed (1024 days, with a CN of its own: see
// CertificateOptions.RootName); each host's
// certificate (500 days, CN=<host>) carries the host in subjectAltName,
// which Go requires (it ignores the CN), and may be used both as a server
// and as a client identity, as mutual TLS needs. The root's key is not
// kept: nothing can sign more certificates with it later.
func GenerateCertificates(dir string, hosts []string, opts CertificateOptions) error {
	if opts.RootBits == 0 {
		opts.RootBits = 4096
	}
	if opts.HostBits == 0 {
		opts.HostBits = 2048
	}
	if opts.ExtraDNS == nil {
		opts.ExtraDNS = []string{"localhost"}
	}
	if opts.ExtraIPs == nil {
		opts.ExtraIPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	if opts.RootName == "" {
		suffix := make([]byte, 4)
		if _, err := rand.Read(suffix); err != nil {
			return fmt.Errorf("grpcapp: root name: %w", err)
		}
		opts.RootName = fmt.Sprintf("eventsourcing-grpc root CA %x %s", suffix, time.Now().UTC().Format("2006-01-02"))
	}
	rootKey, err := rsa.GenerateKey(rand.Reader, opts.RootBits)
	if err != nil {
		return fmt.Errorf("grpcapp: root key: %w", err)
	}
	now := time.Now()
	root := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Country: []string{"GB"}, Province: []string{"London"}, Locality: []string{"London"}, Organization: []string{"IT"}, CommonName: opts.RootName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(0, 0, 1024),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		return fmt.Errorf("grpcapp: root certificate: %w", err)
	}
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})
	if err := writeFile(filepath.Join(dir, "root", "root.crt"), rootPEM, 0o644); err != nil {
		return err
	}
	rootCert, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return err
	}
	for _, host := range hosts {
		key, err := rsa.GenerateKey(rand.Reader, opts.HostBits)
		if err != nil {
			return fmt.Errorf("grpcapp: key of %s: %w", host, err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: host},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.AddDate(0, 0, 500),
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			DNSNames:     append([]string{host}, opts.ExtraDNS...),
			IPAddresses:  opts.ExtraIPs,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, rootCert, &key.PublicKey, rootKey)
		if err != nil {
			return fmt.Errorf("grpcapp: certificate of %s: %w", host, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		hostDir := filepath.Join(dir, host)
		for _, f := range []struct {
			name string
			data []byte
			mode os.FileMode
		}{
			{host + ".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
			{host + ".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644},
			{"root.crt", rootPEM, 0o644},
		} {
			if err := writeFile(filepath.Join(hostDir, f.name), f.data, f.mode); err != nil {
				return err
			}
		}
	}
	return nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("grpcapp: %w", err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("grpcapp: %w", err)
	}
	return nil
}
