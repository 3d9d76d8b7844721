// Package mailtest starts real mail servers for tests: a Dovecot IMAP server
// run from a temporary directory on loopback ports, and an in-process
// go-smtp sink that records what it is sent and can be told to fail.
//
// Dovecot tests never skip silently in CI: when CI=true or
// HELPDESK_REQUIRE_DOVECOT=1 a missing dovecot binary fails the test.
package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// Cert is a self-signed loopback certificate for test servers.
type Cert struct {
	CertPEM, KeyPEM []byte
	TLS             tls.Certificate
	Pool            *x509.CertPool // trusts CertPEM
}

var (
	certOnce sync.Once
	cert     *Cert
	certErr  error
)

// LoopbackCert returns a self-signed certificate valid for localhost and
// 127.0.0.1, generated once per test binary.
func LoopbackCert(t testing.TB) *Cert {
	t.Helper()
	certOnce.Do(func() { cert, certErr = newLoopbackCert() })
	if certErr != nil {
		t.Fatalf("generate test certificate: %v", certErr)
	}
	return cert
}

func newLoopbackCert() (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	c := &Cert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		Pool:    x509.NewCertPool(),
	}
	if c.TLS, err = tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
		return nil, err
	}
	c.Pool.AppendCertsFromPEM(c.CertPEM)
	return c, nil
}
