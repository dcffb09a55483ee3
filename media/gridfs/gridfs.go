// Package gridfs is a media.Store in the MongoDB database PostFlow already
// uses, in GridFS's layout (the GridFS specification,
// github.com/mongodb/specifications, source/gridfs/gridfs-spec.md), so that
// GridFS tools (mongofiles, the drivers' GridFSBucket) read what it writes:
//
//	<bucket>.files   {_id: key, length: int64, chunkSize: int32,
//	                  uploadDate: date, filename: key,
//	                  metadata: {contentType, gen}}
//	<bucket>.chunks  {_id: "<key>/<n>", files_id: key, n: int32,
//	                  data: binary, gen}
//
// It differs from a driver's GridFS in one way: a chunk's _id is derived
// from its key and n, so that every read and delete is an exact {_id}
// lookup. FerretDB v1 (PostFlow's dev and test store) uses an index only for
// filters that are exactly {_id}: the usual {files_id, n} query would scan
// every chunk of every image.
//
// A Put writes the chunks first and the files document last, so a
// half-written file is invisible. Each Put has a generation (an ObjectID)
// stamped on its chunks and its files document; Open refuses a chunk of
// another generation (ErrChanged), so a reader racing a replacement gets an
// error, never a mix of two files' bytes. GridFS tools ignore the extra
// field.
package gridfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/postflow/postflow/media"
)

// DefaultChunkSize is GridFS's default chunk size, 255 KiB: a chunk and its
// document stay well under MongoDB's 16 MiB limit and one chunk is what
// Open holds in memory.
const DefaultChunkSize = 255 * 1024

// DefaultBucket is the bucket name: collections media.files and
// media.chunks.
const DefaultBucket = "media"

// ErrChanged is returned by a reader from Open when the file was replaced
// or deleted while it was being read.
var ErrChanged = errors.New("gridfs: file changed while it was read")

// ErrCorrupt is returned when the stored chunks do not add up to the files
// document (a missing chunk, a wrong n or size): the file is damaged.
var ErrCorrupt = errors.New("gridfs: stored file is corrupt")

// ErrSize is returned by Put when the reader's length is not the size given.
var ErrSize = errors.New("gridfs: reader length differs from the size given")

// Options tune a Store; zero values take the defaults.
type Options struct {
	// Bucket names the collections <Bucket>.files and <Bucket>.chunks.
	Bucket string
	// ChunkSize is the bytes per chunk of files written from now on;
	// files keep the chunk size they were written with.
	ChunkSize int
}

// Store keeps media bytes in GridFS collections of one database.
type Store struct {
	files, chunks *mongo.Collection
	chunkSize     int
}

var _ media.Store = (*Store)(nil)

// New returns a Store in db. It creates nothing: MongoDB creates the
// collections on the first write, and _id is always indexed.
func New(db *mongo.Database, o Options) *Store {
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	return &Store{
		files:     db.Collection(o.Bucket + ".files"),
		chunks:    db.Collection(o.Bucket + ".chunks"),
		chunkSize: o.ChunkSize,
	}
}

func chunkID(key string, n int) string { return fmt.Sprintf("%s/%d", key, n) }

// Put stores exactly size bytes from r under key (ErrSize if r holds fewer
// or more), reading one chunk at a time. An existing file under key is
// hidden first and replaced: if Put fails, no file is left under key.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, typ string) error {
	if size < 0 {
		return fmt.Errorf("gridfs: put %s: negative size %d", key, size)
	}
	// Hide the old file before touching its chunks: a reader never finds
	// a files document over chunks that are being rewritten.
	if _, err := s.files.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}}); err != nil {
		return fmt.Errorf("gridfs: put %s: hide the old file: %w", key, err)
	}
	gen := bson.NewObjectID()
	n, err := s.writeChunks(ctx, key, gen, r, size)
	if err != nil {
		// Best effort, on a context that survives the caller's
		// cancellation: leftovers are invisible anyway (no files
		// document) and the next Put or Delete of the key removes them.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = s.deleteChunksFrom(cctx, key, 0)
		return fmt.Errorf("gridfs: put %s: %w", key, err)
	}
	doc := bson.D{
		{Key: "_id", Value: key},
		{Key: "length", Value: size},
		{Key: "chunkSize", Value: int32(s.chunkSize)},
		{Key: "uploadDate", Value: bson.NewDateTimeFromTime(time.Now())},
		{Key: "filename", Value: key},
		{Key: "metadata", Value: bson.D{{Key: "contentType", Value: typ}, {Key: "gen", Value: gen}}},
	}
	if _, err := s.files.ReplaceOne(ctx, bson.D{{Key: "_id", Value: key}}, doc, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("gridfs: put %s: write the files document: %w", key, err)
	}
	// Chunks past the new end: those of a longer file this one replaced,
	// or left by a Put that died. Chunks are always written from 0 up, so
	// they are contiguous and the first missing one ends them.
	if err := s.deleteChunksFrom(ctx, key, n); err != nil {
		return fmt.Errorf("gridfs: put %s: remove old chunks: %w", key, err)
	}
	return nil
}

// writeChunks writes r's bytes as chunks 0..n-1 and returns n.
func (s *Store) writeChunks(ctx context.Context, key string, gen bson.ObjectID, r io.Reader, size int64) (int, error) {
	buf := make([]byte, s.chunkSize)
	var written int64
	n := 0
	for written < size {
		want := int64(s.chunkSize)
		if rest := size - written; rest < want {
			want = rest
		}
		got, err := io.ReadFull(r, buf[:want])
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return n, fmt.Errorf("%w: %d bytes, want %d", ErrSize, written+int64(got), size)
			}
			return n, fmt.Errorf("read: %w", err)
		}
		doc := bson.D{
			{Key: "_id", Value: chunkID(key, n)},
			{Key: "files_id", Value: key},
			{Key: "n", Value: int32(n)},
			{Key: "data", Value: bson.Binary{Data: buf[:got]}},
			{Key: "gen", Value: gen},
		}
		if _, err := s.chunks.ReplaceOne(ctx, bson.D{{Key: "_id", Value: doc[0].Value}}, doc, options.Replace().SetUpsert(true)); err != nil {
			return n, fmt.Errorf("write chunk %d: %w", n, err)
		}
		written += int64(got)
		n++
	}
	// One byte more means the reader is longer than size: refuse rather
	// than store a truncated file.
	var one [1]byte
	switch m, err := r.Read(one[:]); {
	case m > 0:
		return n, fmt.Errorf("%w: more than %d bytes", ErrSize, size)
	case err != nil && !errors.Is(err, io.EOF):
		return n, fmt.Errorf("read: %w", err)
	}
	return n, nil
}

// deleteChunksFrom deletes chunks n, n+1, ... of key until one is missing.
func (s *Store) deleteChunksFrom(ctx context.Context, key string, n int) error {
	for ; ; n++ {
		res, err := s.chunks.DeleteOne(ctx, bson.D{{Key: "_id", Value: chunkID(key, n)}})
		if err != nil {
			return fmt.Errorf("delete chunk %d: %w", n, err)
		}
		if res.DeletedCount == 0 {
			return nil
		}
	}
}

// Delete removes the file under key: its files document first (the file
// is gone for readers at once), then its chunks. nil if there was none.
func (s *Store) Delete(ctx context.Context, key string) error {
	if _, err := s.files.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}}); err != nil {
		return fmt.Errorf("gridfs: delete %s: %w", key, err)
	}
	if err := s.deleteChunksFrom(ctx, key, 0); err != nil {
		return fmt.Errorf("gridfs: delete %s: %w", key, err)
	}
	return nil
}

// PresignedURL is always "": GridFS serves no URLs; PostFlow's own signed
// route serves the bytes.
func (s *Store) PresignedURL(context.Context, string, time.Duration) (string, error) {
	return "", nil
}

// Open returns a reader of the file under key (media.ErrNotFound if none)
// that fetches one chunk at a time with ctx, checking each chunk's n, size
// and generation against the files document.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	raw, err := s.files.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("gridfs: open %s: %w", key, media.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("gridfs: open %s: %w", key, err)
	}
	length, ok1 := raw.Lookup("length").AsInt64OK()
	chunkSize, ok2 := raw.Lookup("chunkSize").AsInt64OK()
	if !ok1 || !ok2 || length < 0 || chunkSize <= 0 {
		return nil, fmt.Errorf("gridfs: open %s: %w: bad length or chunkSize", key, ErrCorrupt)
	}
	// A file written by another GridFS writer has no gen, and its chunks
	// other _ids: Open does not read it (chunk 0 is missing).
	gen, _ := raw.Lookup("metadata", "gen").ObjectIDOK()
	return &reader{ctx: ctx, s: s, key: key, length: length, chunkSize: chunkSize, gen: gen}, nil
}

// reader streams a file chunk by chunk; it holds one chunk at a time.
type reader struct {
	ctx       context.Context
	s         *Store
	key       string
	length    int64
	chunkSize int64
	gen       bson.ObjectID

	n      int64  // the next chunk to fetch
	off    int64  // bytes handed out so far
	buf    []byte // the rest of the current chunk
	err    error  // sticky
	closed bool
}

func (r *reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errors.New("gridfs: read after close")
	}
	if r.err != nil {
		return 0, r.err
	}
	if len(r.buf) == 0 {
		if r.off >= r.length {
			r.err = io.EOF
			return 0, io.EOF
		}
		if err := r.next(); err != nil {
			r.err = err
			return 0, err
		}
	}
	m := copy(p, r.buf)
	r.buf = r.buf[m:]
	r.off += int64(m)
	return m, nil
}

// next fetches chunk r.n into r.buf and checks it.
func (r *reader) next() error {
	if err := r.ctx.Err(); err != nil {
		return fmt.Errorf("gridfs: read %s: %w", r.key, err)
	}
	r.buf = nil // let the previous chunk go before the next arrives
	raw, err := r.s.chunks.FindOne(r.ctx, bson.D{{Key: "_id", Value: chunkID(r.key, int(r.n))}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		// Gone under us (deleted or being replaced), or never written.
		return fmt.Errorf("gridfs: read %s: chunk %d missing: %w", r.key, r.n, ErrChanged)
	}
	if err != nil {
		return fmt.Errorf("gridfs: read %s chunk %d: %w", r.key, r.n, err)
	}
	if !r.gen.IsZero() {
		if g, _ := raw.Lookup("gen").ObjectIDOK(); g != r.gen {
			return fmt.Errorf("gridfs: read %s chunk %d: %w", r.key, r.n, ErrChanged)
		}
	}
	n, ok := raw.Lookup("n").AsInt64OK()
	_, data, okData := raw.Lookup("data").BinaryOK()
	want := r.chunkSize
	if rest := r.length - r.n*r.chunkSize; rest < want {
		want = rest
	}
	if !ok || n != r.n || !okData || int64(len(data)) != want {
		return fmt.Errorf("gridfs: read %s chunk %d: %w: n %d, %d bytes, want %d", r.key, r.n, ErrCorrupt, n, len(data), want)
	}
	r.buf = data
	r.n++
	return nil
}

func (r *reader) Close() error {
	r.closed = true
	r.buf = nil
	return nil
}
