package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/multipart"
)

// bodyDigest hashes a request body as it streams, holding none of it, to
// tell a retry from another request under the same Idempotency-Key.
//
// A multipart/form-data body is hashed as its handler reads it: each
// part's form name, file name and content, in order. A client that sends
// the same file again frames it with a new boundary (curl -F, a browser's
// FormData, Go's multipart.Writer all pick a random one), so the raw bytes
// of a retry differ while the request is the same. Any other body, or a
// multipart body that does not parse, is hashed byte for byte.
type bodyDigest struct {
	raw hash.Hash
	// pw feeds the multipart parser, nil for another body.
	pw     *io.PipeWriter
	done   chan struct{}
	parts  string // the parts' digest, once the body parsed to its end
	closed bool
}

func newBodyDigest(contentType string) *bodyDigest {
	d := &bodyDigest{raw: sha256.New()}
	mt, params, err := mime.ParseMediaType(contentType)
	if err == nil && mt == "multipart/form-data" && params["boundary"] != "" {
		pr, pw := io.Pipe()
		d.pw, d.done = pw, make(chan struct{})
		go d.readParts(pr, params["boundary"])
	}
	return d
}

// Write hashes p; it never fails.
func (d *bodyDigest) Write(p []byte) (int, error) {
	d.raw.Write(p)
	if d.pw != nil {
		// readParts reads to the pipe's end whatever it makes of the
		// bytes, so this write returns.
		_, _ = d.pw.Write(p)
	}
	return len(p), nil
}

// readParts hashes the parts of the body written to pr.
func (d *bodyDigest) readParts(pr *io.PipeReader, boundary string) {
	defer close(d.done)
	// The epilogue, or the rest of a body that broke off as multipart.
	defer func() { _, _ = io.Copy(io.Discard, pr) }()
	mr := multipart.NewReader(pr, boundary)
	h := sha256.New()
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			d.parts = hex.EncodeToString(h.Sum(nil))
			return
		}
		if err != nil {
			return
		}
		content := sha256.New()
		if _, err := io.Copy(content, p); err != nil {
			return
		}
		fmt.Fprintf(h, "%q %q %x\n", p.FormName(), p.FileName(), content.Sum(nil))
	}
}

// Close ends the body: Sum may be read then. It may be called again.
func (d *bodyDigest) Close() {
	if d.closed {
		return
	}
	d.closed = true
	if d.pw != nil {
		_ = d.pw.Close()
		<-d.done
	}
}

// Sum closes d and returns the body's digest: "multipart:" and the parts'
// SHA-256, or "sha256:" and the bytes', in hex.
func (d *bodyDigest) Sum() string {
	d.Close()
	if d.parts != "" {
		return "multipart:" + d.parts
	}
	return "sha256:" + hex.EncodeToString(d.raw.Sum(nil))
}
