// Package storetest is the conformance suite every media.Store passes
// (media/gridfs, media/s3): what the rest of PostFlow may count on from a
// store, checked against the real servers the stores talk to.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postflow/postflow/media"
)

// Options say what the store under test does beyond the common contract.
type Options struct {
	// Presigns: PresignedURL returns a URL that serves the bytes with a
	// plain GET until it expires. Otherwise it must return "".
	Presigns bool
	// HTTPClient fetches presigned URLs; http.DefaultClient if nil.
	HTTPClient *http.Client
}

// Run runs the suite; newStore returns a store with nothing in it (a fresh
// database or bucket), one per subtest.
func Run(t *testing.T, newStore func(t *testing.T) media.Store, o Options) {
	tests := []struct {
		name string
		run  func(t *testing.T, s media.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"ZeroLength", testZeroLength},
		{"MultiChunk5MB", testMultiChunk},
		{"Replace", testReplace},
		{"Delete", testDelete},
		{"DeleteAbsent", testDeleteAbsent},
		{"OpenAbsent", testOpenAbsent},
		{"ReaderFailsMidway", testReaderFails},
		{"ReplaceFailsMidway", testReplaceFails},
		{"ShortOrLongReader", testSizeMismatch},
		{"ContextCancelled", testContextCancelled},
		{"CancelWhileReading", testCancelWhileReading},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore(t)) })
	}
	t.Run("PresignedURL", func(t *testing.T) {
		s := newStore(t)
		if o.Presigns {
			testPresigned(t, s, o.HTTPClient)
		} else {
			testNoPresigned(t, s)
		}
	})
}

// Data returns n deterministic pseudo-random bytes from seed (incompressible,
// like image data).
func Data(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	_, _ = r.Read(b)
	return b
}

// put stores b under key and fails t on error.
func put(t *testing.T, s media.Store, key string, b []byte, typ string) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(b), int64(len(b)), typ); err != nil {
		t.Fatalf("Put(%s, %d bytes): %v", key, len(b), err)
	}
}

// read opens key and returns its bytes.
func read(t *testing.T, s media.Store, key string) ([]byte, error) {
	t.Helper()
	rc, err := s.Open(context.Background(), key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// mustRead is read that fails t on error and compares with want.
func mustRead(t *testing.T, s media.Store, key string, want []byte) {
	t.Helper()
	got, err := read(t, s, key)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %s: %d bytes (sha256 %x), want %d bytes (sha256 %x)", key, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

func mustBeAbsent(t *testing.T, s media.Store, key string) {
	t.Helper()
	rc, err := s.Open(context.Background(), key)
	if err == nil {
		rc.Close()
		t.Fatalf("Open(%s) found a file, want media.ErrNotFound", key)
	}
	if !errors.Is(err, media.ErrNotFound) {
		t.Fatalf("Open(%s) = %v, want media.ErrNotFound", key, err)
	}
}

const key = "65f0c0ffee0000000000a001"

func testRoundTrip(t *testing.T, s media.Store) {
	for _, n := range []int{1, 1000, 300 * 1024} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			b := Data(uint64(n), n)
			k := fmt.Sprintf("%s-%d", key, n)
			put(t, s, k, b, "image/png")
			mustRead(t, s, k, b)
		})
	}
}

func testZeroLength(t *testing.T, s media.Store) {
	put(t, s, key, nil, "image/png")
	mustRead(t, s, key, []byte{})
}

// A 5 MB file streamed in from a reader that is not a bytes.Reader (so no
// store can take a shortcut through io.Seeker or WriterTo) and out again,
// compared by digest.
func testMultiChunk(t *testing.T, s media.Store) {
	const n = 5 << 20
	b := Data(5, n)
	if err := s.Put(context.Background(), key, onlyReader{bytes.NewReader(b)}, n, "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	got, err := io.Copy(h, rc)
	if err != nil {
		t.Fatalf("read after %d bytes: %v", got, err)
	}
	if want := sha256.Sum256(b); got != n || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("read %d bytes, sha256 %x; want %d, %x", got, h.Sum(nil), n, want)
	}
}

// onlyReader hides every method but Read.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func testReplace(t *testing.T, s media.Store) {
	steps := []struct {
		name string
		b    []byte
	}{
		{"long", Data(1, 700*1024)},
		{"short", Data(2, 10)},
		{"long again", Data(3, 600*1024)},
		{"empty", nil},
	}
	for _, st := range steps {
		put(t, s, key, st.b, "image/webp")
		if st.b == nil {
			st.b = []byte{}
		}
		mustRead(t, s, key, st.b)
	}
}

func testDelete(t *testing.T, s media.Store) {
	put(t, s, key, Data(1, 600*1024), "image/png")
	put(t, s, key+"b", Data(2, 100), "image/png")
	if err := s.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	mustBeAbsent(t, s, key)
	mustRead(t, s, key+"b", Data(2, 100)) // only that key went
	// A new file under the deleted key has none of the old one's bytes.
	put(t, s, key, Data(3, 5), "image/png")
	mustRead(t, s, key, Data(3, 5))
}

func testDeleteAbsent(t *testing.T, s media.Store) {
	if err := s.Delete(context.Background(), key); err != nil {
		t.Fatalf("Delete of an absent key = %v, want nil", err)
	}
}

func testOpenAbsent(t *testing.T, s media.Store) {
	mustBeAbsent(t, s, key)
}

// failingReader hands out n bytes of its data, then fails.
type failingReader struct {
	data []byte
	n    int
}

var errReader = errors.New("storetest: the reader failed")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errReader
	}
	m := min(len(p), f.n)
	copy(p, f.data[:m])
	f.data, f.n = f.data[m:], f.n-m
	return m, nil
}

// A Put whose reader fails after more than a chunk's worth returns an
// error and leaves no file.
func testReaderFails(t *testing.T, s media.Store) {
	const n = 1 << 20
	err := s.Put(context.Background(), key, &failingReader{Data(1, n), 600 * 1024}, n, "image/png")
	if err == nil {
		t.Fatal("Put with a failing reader = nil, want an error")
	}
	mustBeAbsent(t, s, key)
}

// A failed Put over an existing file leaves either the old file, whole, or
// none: never a mix.
func testReplaceFails(t *testing.T, s media.Store) {
	old := Data(1, 800*1024)
	put(t, s, key, old, "image/png")
	const n = 1 << 20
	if err := s.Put(context.Background(), key, &failingReader{Data(2, n), 600 * 1024}, n, "image/png"); err == nil {
		t.Fatal("Put with a failing reader = nil, want an error")
	}
	got, err := read(t, s, key)
	switch {
	case errors.Is(err, media.ErrNotFound):
	case err != nil:
		t.Fatalf("read after a failed replace: %v", err)
	case !bytes.Equal(got, old):
		t.Fatalf("read after a failed replace: %d bytes that are not the old file", len(got))
	}
}

// A reader shorter or longer than the size given is an error, and stores
// nothing.
func testSizeMismatch(t *testing.T, s media.Store) {
	b := Data(1, 300*1024)
	for _, tt := range []struct {
		name string
		size int64
	}{{"short", int64(len(b)) + 1}, {"long", int64(len(b)) - 1}, {"long by a chunk", int64(len(b)) - 256*1024}} {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Put(context.Background(), key, onlyReader{bytes.NewReader(b)}, tt.size, "image/png"); err == nil {
				t.Fatalf("Put of %d bytes as %d = nil, want an error", len(b), tt.size)
			}
			mustBeAbsent(t, s, key)
		})
	}
}

func testContextCancelled(t *testing.T, s media.Store) {
	put(t, s, key, Data(1, 100), "image/png")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := Data(2, 100)
	if err := s.Put(ctx, key+"b", bytes.NewReader(b), int64(len(b)), "image/png"); err == nil {
		t.Error("Put with a cancelled context = nil, want an error")
	}
	mustBeAbsent(t, s, key+"b")
	if rc, err := s.Open(ctx, key); err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
		if err == nil {
			t.Error("Open and read with a cancelled context succeeded, want an error")
		}
	}
	if err := s.Delete(ctx, key); err == nil {
		t.Error("Delete with a cancelled context = nil, want an error")
	}
	mustRead(t, s, key, Data(1, 100))
}

// Cancelling the context Open was given stops a read under way.
func testCancelWhileReading(t *testing.T, s media.Store) {
	const n = 5 << 20
	put(t, s, key, Data(1, n), "image/png")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	cancel()
	got, err := io.Copy(io.Discard, rc)
	if err == nil {
		t.Fatalf("read on after cancel: %d more bytes and no error, want an error", got)
	}
}

func testNoPresigned(t *testing.T, s media.Store) {
	put(t, s, key, Data(1, 10), "image/png")
	u, err := s.PresignedURL(context.Background(), key, time.Minute)
	if u != "" || err != nil {
		t.Fatalf("PresignedURL = %q, %v; want \"\", nil", u, err)
	}
}

func testPresigned(t *testing.T, s media.Store, c *http.Client) {
	if c == nil {
		c = http.DefaultClient
	}
	b := Data(1, 300*1024)
	put(t, s, key, b, "image/png")
	get := func(u string) (int, []byte) {
		t.Helper()
		res, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, body
	}

	long, err := s.PresignedURL(context.Background(), key, time.Hour)
	if err != nil || !strings.HasPrefix(long, "http") {
		t.Fatalf("PresignedURL = %q, %v; want a URL", long, err)
	}
	if code, body := get(long); code != http.StatusOK || !bytes.Equal(body, b) {
		t.Fatalf("GET presigned URL: %d, %d bytes; want 200 and the %d bytes", code, len(body), len(b))
	}

	short, err := s.PresignedURL(context.Background(), key, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// SigV4 expiry is in whole seconds from the signing second: 2.5 s is
	// past it whatever the rounding.
	time.Sleep(2500 * time.Millisecond)
	if code, body := get(short); code == http.StatusOK {
		t.Fatalf("GET an expired presigned URL: 200 with %d bytes, want a refusal", len(body))
	}
	// Tampering with the signed URL is refused too.
	if code, _ := get(strings.Replace(long, key, key+"x", 1)); code == http.StatusOK {
		t.Fatal("GET a presigned URL for another key: 200, want a refusal")
	}
}
