// Package s3 is a media.Store in an S3-compatible bucket (Amazon S3, MinIO,
// the Versity S3 Gateway, ...), for deployments that keep media out of
// MongoDB. Objects are named Prefix + key; PresignedURL is a SigV4
// presigned GET (AWS, "Authenticating Requests: Using Query Parameters").
//
// The client is aws-sdk-go-v2's service/s3, configured only from Config:
// no environment, shared files or instance metadata are read.
package s3

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/postflow/postflow/media"
)

// Config is where the bucket is and how to sign for it.
type Config struct {
	// Endpoint is the S3 API's base URL (http://127.0.0.1:7070,
	// https://s3.example.com); "" for AWS's own, from Region.
	Endpoint string
	// Region signs requests (SigV4); us-east-1 when "".
	Region string
	Bucket string
	// AccessKeyID and SecretAccessKey are static credentials. The secret
	// is never part of an error, a URL or a log line.
	AccessKeyID     string
	SecretAccessKey string `json:"-"`
	// ForcePathStyle addresses the bucket as endpoint/bucket/key rather
	// than bucket.endpoint/key: MinIO and versitygw need it.
	ForcePathStyle bool
	// Prefix is put before every key, as a folder: "postflow/" names
	// objects postflow/<key>. A missing trailing slash is added.
	Prefix string
	// HTTPClient, if set, makes the requests (tests, proxies).
	HTTPClient *http.Client
}

// ErrNoBucket: the bucket does not exist (HEAD bucket answered 404).
var ErrNoBucket = errors.New("s3: bucket not found")

// ErrAccessDenied: the credentials may not use the bucket (403).
var ErrAccessDenied = errors.New("s3: access to the bucket denied")

// ErrSize is returned by Put when the reader's length is not the size given.
var ErrSize = errors.New("s3: reader length differs from the size given")

// Store keeps media bytes as objects in one bucket.
type Store struct {
	client  *awss3.Client
	presign *awss3.PresignClient
	bucket  string
	prefix  string
}

var _ media.Store = (*Store)(nil)

// New returns a Store for c's bucket. It makes no request; CheckBucket
// tells whether the bucket is there.
func New(c Config) (*Store, error) {
	if c.Bucket == "" {
		return nil, errors.New("s3: no bucket named")
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return nil, errors.New("s3: an access key id and a secret access key are required")
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	o := awss3.Options{
		Region:       c.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, ""),
		UsePathStyle: c.ForcePathStyle,
		// A body that cannot be rewound (Put streams from its reader) is
		// sent with an unsigned payload hash: hashing it first would mean
		// reading it twice. TLS protects it on https.
		APIOptions: []func(*middleware.Stack) error{v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware},
	}
	if c.HTTPClient != nil {
		o.HTTPClient = c.HTTPClient
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("s3: the endpoint must be an http or https URL")
		}
		o.BaseEndpoint = aws.String(strings.TrimRight(c.Endpoint, "/"))
		if u.Scheme == "http" {
			// The SDK sends checksums of a streamed body only as an
			// aws-chunked trailer, which it does over TLS alone; over
			// plain http (a server on this host) it would refuse a
			// body it cannot rewind. Checksums stay on for https.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		}
	}
	client := awss3.New(o)
	prefix := strings.Trim(c.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &Store{client: client, presign: awss3.NewPresignClient(client), bucket: c.Bucket, prefix: prefix}, nil
}

func (s *Store) object(key string) *string { return aws.String(s.prefix + key) }

// CheckBucket asks the server for the bucket (HEAD bucket): ErrNoBucket or
// ErrAccessDenied, wrapped with the bucket's name, or the transport's
// error when the server cannot be reached.
func (s *Store) CheckBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	switch status(err) {
	case 0:
		if err != nil {
			return fmt.Errorf("s3: bucket %s: %w", s.bucket, err)
		}
		return nil
	case http.StatusNotFound:
		return fmt.Errorf("%w: %s", ErrNoBucket, s.bucket)
	case http.StatusForbidden, http.StatusUnauthorized:
		return fmt.Errorf("%w: %s", ErrAccessDenied, s.bucket)
	default:
		return fmt.Errorf("s3: bucket %s: %w", s.bucket, err)
	}
}

// status is the HTTP status of a failed S3 call, 0 if it got no answer.
func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// Put uploads exactly size bytes from r (ErrSize if r holds fewer or
// more) as one streamed PUT to a temporary object, then copies it to
// Prefix+key on the server (CopyObject) and deletes the temporary one.
//
// Why not PUT the object under its key directly: a server must refuse a
// body cut short, and AWS does, but versitygw 1.8.0 stores what arrived
// when the client breaks off at a chunk boundary (found by the
// conformance suite). Copied only after the PUT succeeded, the object
// under key is always whole: a failed Put leaves the old object or none,
// and at worst a temporary object under Prefix+".incoming/", which a
// bucket lifecycle rule on that prefix may expire. The copy is
// server-side and costs no transfer.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, typ string) error {
	if size < 0 {
		return fmt.Errorf("s3: put %s: negative size %d", key, size)
	}
	tmp := s.prefix + ".incoming/" + key + "." + rand.Text()
	defer func() {
		// Best effort, even when ctx is done: the temporary object is
		// invisible to Open either way.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = s.client.DeleteObject(cctx, &awss3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(tmp)})
	}()
	in := &awss3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(tmp),
		Body:          &exactReader{r: r, left: size, size: size},
		ContentLength: aws.Int64(size),
		ContentType:   aws.String(typ),
	}
	// One attempt: a streamed body cannot be sent again (the caller
	// retries with a fresh reader).
	if _, err := s.client.PutObject(ctx, in, func(o *awss3.Options) { o.RetryMaxAttempts = 1 }); err != nil {
		return fmt.Errorf("s3: put %s: %w", key, err)
	}
	// The copy keeps the temporary object's Content-Type (metadata
	// directive COPY, the default).
	if _, err := s.client.CopyObject(ctx, &awss3.CopyObjectInput{
		Bucket:     aws.String(s.bucket),
		Key:        s.object(key),
		CopySource: aws.String(copySource(s.bucket, tmp)),
	}); err != nil {
		return fmt.Errorf("s3: put %s: copy into place: %w", key, err)
	}
	return nil
}

// copySource is CopyObject's x-amz-copy-source: bucket/key, each path
// segment URL-encoded.
func copySource(bucket, key string) string {
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return bucket + "/" + strings.Join(segs, "/")
}

// exactReader passes on r's bytes and fails, before the last of them is
// sent, unless r holds exactly size: the HTTP client reads only
// Content-Length bytes, so it would never see a longer reader's excess.
type exactReader struct {
	r          io.Reader
	left, size int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		return e.excess()
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) && e.left > 0 {
		return n, fmt.Errorf("%w: %d bytes, want %d", ErrSize, e.size-e.left, e.size)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return n, err
	}
	if e.left == 0 {
		if _, err := e.excess(); !errors.Is(err, io.EOF) {
			return 0, err
		}
		return n, io.EOF
	}
	return n, nil
}

// excess reads one byte more: io.EOF if there is none, else ErrSize.
func (e *exactReader) excess() (int, error) {
	var one [1]byte
	for {
		n, err := e.r.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrSize, e.size)
		}
		if errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		if err != nil {
			return 0, err
		}
	}
}

// Open streams the object under key: media.ErrNotFound if there is none.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(s.bucket), Key: s.object(key)})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) || status(err) == http.StatusNotFound {
			return nil, fmt.Errorf("s3: open %s: %w", key, media.ErrNotFound)
		}
		return nil, fmt.Errorf("s3: open %s: %w", key, err)
	}
	return out.Body, nil
}

// Delete removes the object under key; S3 answers a delete of an absent
// object with success, and so does Delete.
func (s *Store) Delete(ctx context.Context, key string) error {
	if _, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: s.object(key)}); err != nil {
		return fmt.Errorf("s3: delete %s: %w", key, err)
	}
	return nil
}

// PresignedURL is a presigned GET of the object under key, valid for
// expires (SigV4 allows 1 s to 7 days). Signing is local: it neither
// checks that the object exists nor makes a request.
func (s *Store) PresignedURL(ctx context.Context, key string, expires time.Duration) (string, error) {
	req, err := s.presign.PresignGetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(s.bucket), Key: s.object(key)},
		awss3.WithPresignExpires(expires))
	if err != nil {
		return "", fmt.Errorf("s3: presign %s: %w", key, err)
	}
	return req.URL, nil
}
