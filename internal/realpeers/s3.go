package realpeers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// vgwVersion is the Versity S3 Gateway that scripts/install-peers.sh builds.
const vgwVersion = "v1.8.0"

// S3 is a Versity S3 Gateway (versitygw, Apache-2.0, pure Go) on 127.0.0.1
// serving a folder under t.TempDir() as its buckets (its posix backend),
// in single-account mode with a random access key. It speaks the S3 API
// with SigV4 (headers, presigned URLs, aws-chunked bodies with trailing
// checksums), path-style addressing.
//
// Checked by TestS3TruncatedPut: versitygw 1.8.0 stores what arrived of
// a PUT whose client broke the connection before Content-Length bytes: a
// truncated object, where S3 answers 400 IncompleteBody and stores
// nothing. Over https, where the AWS SDK streams aws-chunked with a
// trailing checksum, it still does when the break falls between chunks.
// media/s3 streams to a temporary key and copies into place for that.
type S3 struct {
	// URL is the endpoint, http://127.0.0.1:PORT, or https:// with S3TLS.
	URL             string
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	// Dir is the folder the buckets are in.
	Dir string
	// Client is an HTTP client for URL: with S3TLS it trusts the
	// server's self-signed certificate.
	Client *http.Client
}

// S3Option changes how StartS3 runs the server.
type S3Option func(*s3Options)

type s3Options struct{ tls bool }

// S3TLS serves https with a certificate for 127.0.0.1 made for this start;
// S3.Client trusts it.
func S3TLS() S3Option { return func(o *s3Options) { o.tls = true } }

// s3StartTimeout bounds a start; versitygw is ready in well under a second.
const s3StartTimeout = 30 * time.Second

// StartS3 starts versitygw on a free port with an empty folder of buckets
// and waits until its health endpoint answers. t.Cleanup stops it. Without
// the peers installed it skips or fails t, see the package doc.
func StartS3(t testing.TB, opts ...S3Option) *S3 {
	t.Helper()
	var o s3Options
	for _, opt := range opts {
		opt(&o)
	}
	dir := filepath.Join(Dir(), "versitygw")
	requireStamp(t, "versitygw "+vgwVersion, dir, vgwVersion)
	bin := filepath.Join(dir, "bin", "versitygw")
	if !fileExists(bin) {
		unavailable(t, "%s is missing", bin)
	}
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		scheme := "http"
		if o.tls {
			scheme = "https"
		}
		s := &S3{
			URL:             fmt.Sprintf("%s://127.0.0.1:%d", scheme, port),
			Client:          &http.Client{Timeout: 60 * time.Second},
			Region:          "us-east-1",
			AccessKeyID:     "pf" + randomSecret(8),
			SecretAccessKey: randomSecret(20),
			Dir:             filepath.Join(t.TempDir(), "buckets"),
		}
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			t.Fatalf("realpeers: %v", err)
		}
		// Keys go by environment, not argv, so that ps shows no secret.
		args := []string{"--port", fmt.Sprintf("127.0.0.1:%d", port), "--region", s.Region, "--health", "/health", "--quiet"}
		if o.tls {
			certFile, keyFile, pool := selfSigned(t)
			args = append(args, "--cert", certFile, "--key", keyFile)
			s.Client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		}
		cmd := exec.Command(bin, append(args, "posix", s.Dir)...)
		cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKeyID, "ROOT_SECRET_ACCESS_KEY="+s.SecretAccessKey)
		started := time.Now()
		p, err := startProc("versitygw", cmd)
		if err != nil {
			t.Fatalf("realpeers: start versitygw: %v", err)
		}
		t.Cleanup(func() { p.stop(t) })
		if s.waitReady(p, s3StartTimeout) {
			t.Logf("realpeers: versitygw at %s ready in %s", s.URL, time.Since(started).Round(10*time.Millisecond))
			return s
		}
		if p.portTaken() && attempt < 3 {
			continue
		}
		p.stop(t)
		t.Fatalf("realpeers: versitygw not ready within %s; its output:\n%s", s3StartTimeout, p.out.String())
	}
}

func (s *S3) waitReady(p *proc, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && p.running() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/health", nil)
		resp, err := s.Client.Do(req)
		cancel()
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// CreateBucket creates a bucket through the S3 API (CreateBucket), as an
// operator would before pointing PostFlow at it.
func (s *S3) CreateBucket(t testing.TB, name string) {
	t.Helper()
	c := awss3.New(awss3.Options{
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, ""),
		BaseEndpoint: aws.String(s.URL),
		UsePathStyle: true,
		HTTPClient:   s.Client,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("realpeers: create bucket %s: %v", name, err)
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 under t.TempDir()
// and returns their paths and a pool that trusts the certificate.
func selfSigned(t testing.TB) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("realpeers: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "realpeers"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("realpeers: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("realpeers: %v", err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatalf("realpeers: %v", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatalf("realpeers: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("realpeers: %v", err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
