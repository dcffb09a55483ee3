package gridfs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/media"
	"github.com/postflow/postflow/media/gridfs"
	"github.com/postflow/postflow/media/storetest"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

func newStore(t testing.TB) (*gridfs.Store, *mongo.Database) {
	db := mongotest.Store(t).DB
	return gridfs.New(db, gridfs.Options{}), db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) media.Store {
		s, _ := newStore(t)
		return s
	}, storetest.Options{})
}

// The driver's own GridFS reads what the store wrote: the layout is
// GridFS's, whatever the chunks' _ids.
func TestDriverGridFSReadsIt(t *testing.T) {
	for _, tt := range []struct {
		name string
		size int
	}{{"empty", 0}, {"one chunk", 1000}, {"exact chunks", 2 * gridfs.DefaultChunkSize}, {"several chunks", 3*gridfs.DefaultChunkSize + 17}} {
		t.Run(tt.name, func(t *testing.T) {
			s, db := newStore(t)
			ctx := context.Background()
			b := storetest.Data(uint64(tt.size), tt.size)
			key := "65f0c0ffee0000000000b001"
			// Written twice, longer first: the driver must not see the
			// first file's chunks past the second's end.
			long := storetest.Data(9, tt.size+2*gridfs.DefaultChunkSize)
			if err := s.Put(ctx, key, bytes.NewReader(long), int64(len(long)), "image/png"); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, key, bytes.NewReader(b), int64(len(b)), "image/png"); err != nil {
				t.Fatal(err)
			}
			bucket := db.GridFSBucket(options.GridFSBucket().SetName(gridfs.DefaultBucket))
			ds, err := bucket.OpenDownloadStream(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			defer ds.Close()
			got, err := io.ReadAll(ds)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, b) {
				t.Fatalf("driver read %d bytes, want the %d written", len(got), len(b))
			}
			f := ds.GetFile()
			if f.Length != int64(len(b)) || f.ChunkSize != gridfs.DefaultChunkSize || f.Name != key {
				t.Errorf("driver's file = {length %d, chunkSize %d, name %q}, want {%d, %d, %q}", f.Length, f.ChunkSize, f.Name, len(b), gridfs.DefaultChunkSize, key)
			}
			var meta struct {
				ContentType string `bson:"contentType"`
			}
			if err := bson.Unmarshal(f.Metadata, &meta); err != nil || meta.ContentType != "image/png" {
				t.Errorf("metadata = %v (%v), want contentType image/png", f.Metadata, err)
			}
		})
	}
}

// Chunks are found by their _id alone, "<key>/<n>": the lookup FerretDB
// answers from its index.
func TestChunkIDs(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	b := storetest.Data(1, gridfs.DefaultChunkSize+1)
	if err := s.Put(ctx, "k1", bytes.NewReader(b), int64(len(b)), "image/png"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		id   string
		n    int32
		size int
	}{{"k1/0", 0, gridfs.DefaultChunkSize}, {"k1/1", 1, 1}} {
		var c struct {
			FilesID string `bson:"files_id"`
			N       int32  `bson:"n"`
			Data    []byte `bson:"data"`
		}
		if err := db.Collection("media.chunks").FindOne(ctx, bson.D{{Key: "_id", Value: tt.id}}).Decode(&c); err != nil {
			t.Fatalf("chunk %s: %v", tt.id, err)
		}
		if c.FilesID != "k1" || c.N != tt.n || len(c.Data) != tt.size {
			t.Errorf("chunk %s = {files_id %q, n %d, %d bytes}, want {k1, %d, %d}", tt.id, c.FilesID, c.N, len(c.Data), tt.n, tt.size)
		}
	}
	if n, err := db.Collection("media.chunks").CountDocuments(ctx, bson.D{}); err != nil || n != 2 {
		t.Errorf("%d chunks (%v), want 2", n, err)
	}
}

// A reader racing a replacement gets an error, never the new file's bytes
// after the old one's.
func TestReadRacingReplace(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	old, repl := storetest.Data(1, 3*gridfs.DefaultChunkSize), storetest.Data(2, 3*gridfs.DefaultChunkSize)
	if err := s.Put(ctx, "k", bytes.NewReader(old), int64(len(old)), "image/png"); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "k", bytes.NewReader(repl), int64(len(repl)), "image/png"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, gridfs.ErrChanged) {
		t.Fatalf("read across a replace = %v, want ErrChanged", err)
	}
}

// A missing or cut chunk is reported, not read as a shorter file.
func TestDamagedFile(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(ctx context.Context, c *mongo.Collection) error
		want   error
	}{
		{"missing chunk", func(ctx context.Context, c *mongo.Collection) error {
			_, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: "k/1"}})
			return err
		}, gridfs.ErrChanged},
		{"short chunk", func(ctx context.Context, c *mongo.Collection) error {
			_, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: "k/1"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: bson.Binary{Data: []byte("x")}}}}})
			return err
		}, gridfs.ErrCorrupt},
		{"wrong n", func(ctx context.Context, c *mongo.Collection) error {
			_, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: "k/1"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: int32(2)}}}})
			return err
		}, gridfs.ErrCorrupt},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, db := newStore(t)
			ctx := context.Background()
			b := storetest.Data(1, 3*gridfs.DefaultChunkSize)
			if err := s.Put(ctx, "k", bytes.NewReader(b), int64(len(b)), "image/png"); err != nil {
				t.Fatal(err)
			}
			if err := tt.damage(ctx, db.Collection("media.chunks")); err != nil {
				t.Fatal(err)
			}
			rc, err := s.Open(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if _, err := io.Copy(io.Discard, rc); !errors.Is(err, tt.want) {
				t.Fatalf("read = %v, want %v", err, tt.want)
			}
		})
	}
}

// Open holds about one chunk. Two measures, neither a timing: the chunks
// fetched never run ahead of the bytes handed out (counted by a command
// monitor, exact), and the live heap after a collection at each read stays
// far below the file's size (a reader that kept the chunks it passed would
// hold all 5 MiB by the end). Peak HeapAlloc between collections is not
// measured: it counts garbage of the in-process FerretDB too, and flaked.
func TestOpenHoldsAboutAChunk(t *testing.T) {
	if raceEnabled {
		t.Skip("heap measurements mean nothing under the race detector; `go test` without -race makes them")
	}
	var fetched atomic.Int64
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName == "find" && e.Command.Lookup("find").StringValue() == "media.chunks" {
			fetched.Add(1)
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(mongotest.URI()).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	_, db := newStore(t)
	db = client.Database(db.Name())
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	s := gridfs.New(db, gridfs.Options{})

	ctx := context.Background()
	const n = 5 << 20
	if err := s.Put(ctx, "k", bytes.NewReader(storetest.Data(1, n)), n, "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	live := func() int64 {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	base := live()
	rc, err := s.Open(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 64<<10)
	var read, grew int64
	for {
		m, err := rc.Read(buf)
		read += int64(m)
		if chunks, most := fetched.Load(), read/gridfs.DefaultChunkSize+1; chunks > most {
			t.Fatalf("after %d bytes read, %d chunks fetched, want at most %d", read, chunks, most)
		}
		grew = max(grew, live()-base)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if read != n {
		t.Fatalf("read %d bytes, want %d", read, n)
	}
	t.Logf("live heap grew by at most %d KiB while reading %d KiB", grew>>10, n>>10)
	if grew > n/2 {
		t.Fatalf("live heap grew by %d KiB while reading a %d KiB file: the reader keeps what it passed", grew>>10, n>>10)
	}
}

// BenchmarkOpen5MB streams a 5 MB file out of the store: B/op is about the
// file (each chunk arrives once), while TestOpenHoldsAboutAChunk shows that
// only about one chunk of it is live at a time.
func BenchmarkOpen5MB(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	const n = 5 << 20
	if err := s.Put(ctx, "k", bytes.NewReader(storetest.Data(1, n)), n, "image/jpeg"); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 32<<10)
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		rc, err := s.Open(ctx, "k")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, rc, buf); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// BenchmarkPut5MB writes a 5 MB file chunk by chunk.
func BenchmarkPut5MB(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	const n = 5 << 20
	data := storetest.Data(1, n)
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Put(ctx, "k", bytes.NewReader(data), n, "image/jpeg"); err != nil {
			b.Fatal(err)
		}
	}
}
