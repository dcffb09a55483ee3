package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"

	"golang.org/x/image/webp"
)

// exifWithGPS builds a big-endian TIFF/EXIF block by hand: IFD0 holds
// Orientation and a GPSInfo pointer; the GPS IFD holds GPSLatitudeRef "N"
// and GPSLatitude 51/1, 30/1, 0/1 (three RATIONALs stored after it).
func exifWithGPS(orientation uint16) []byte {
	var b bytes.Buffer
	be := binary.BigEndian
	w16 := func(v uint16) { _ = binary.Write(&b, be, v) }
	w32 := func(v uint32) { _ = binary.Write(&b, be, v) }
	b.WriteString("MM")
	w16(0x2A)
	w32(8) // IFD0
	// IFD0 at 8: 2 entries -> 2 + 24 + 4 = 30 bytes, GPS IFD at 38.
	w16(2)
	w16(0x0112)
	w16(3)
	w32(1)
	w16(orientation)
	w16(0)
	w16(0x8825)
	w16(4)
	w32(1)
	w32(38)
	w32(0)
	// GPS IFD at 38: 2 entries -> 30 bytes, rationals at 68.
	w16(2)
	w16(0x0001) // GPSLatitudeRef
	w16(2)      // ASCII
	w32(2)
	b.WriteString("N\x00\x00\x00")
	w16(0x0002) // GPSLatitude
	w16(5)      // RATIONAL
	w32(3)
	w32(68)
	w32(0)
	for _, v := range []uint32{51, 1, 30, 1, 0, 1} {
		w32(v)
	}
	return b.Bytes()
}

// jpegSegment is marker, big-endian length, payload.
func jpegSegment(marker byte, payload []byte) []byte {
	s := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(s[2:], uint16(len(payload)+2))
	return append(s, payload...)
}

const xmpPacket = `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description exif:GPSLatitude="51,30.0N"/></rdf:RDF></x:xmpmeta>`

// jpegWithMetadata splices, right after SOI, EXIF with GPS (APP1), XMP
// (APP1), Photoshop IPTC (APP13) and a comment into an encoded JPEG; and
// after EOI, a trailer.
func jpegWithMetadata(t testing.TB, m image.Image, orientation uint16) []byte {
	t.Helper()
	plain := encodeJPEG(t, m)
	var b bytes.Buffer
	b.Write(plain[:2])
	b.Write(jpegSegment(0xE1, append([]byte("Exif\x00\x00"), exifWithGPS(orientation)...)))
	b.Write(jpegSegment(0xE1, append([]byte("http://ns.adobe.com/xap/1.0/\x00"), xmpPacket...)))
	b.Write(jpegSegment(0xED, []byte("Photoshop 3.0\x008BIM GPS city=Paris")))
	b.Write(jpegSegment(0xFE, []byte("shot at GPS 51.5N")))
	b.Write(plain[2:])
	b.WriteString("trailer GPS 51.5N")
	return b.Bytes()
}

// pngWithMetadata splices eXIf (with GPS), tEXt, zTXt and iTXt chunks after
// IHDR (signature 8 bytes + IHDR 25 bytes).
func pngWithMetadata(t testing.TB, m image.Image) []byte {
	t.Helper()
	plain := encodePNG(t, m)
	var b bytes.Buffer
	b.Write(plain[:33])
	b.Write(pngChunk("eXIf", exifWithGPS(1)))
	b.Write(pngChunk("tEXt", []byte("Comment\x00GPS 51.5N")))
	b.Write(pngChunk("zTXt", []byte("Location\x00\x00x\x9c\x03\x00\x00\x00\x00\x01")))
	b.Write(pngChunk("iTXt", []byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00"+xmpPacket)))
	b.Write(plain[33:])
	return b.Bytes()
}

// gifWithMetadata splices a comment extension and an XMP application
// extension before the trailer.
func gifWithMetadata(t testing.TB, m image.Image) []byte {
	t.Helper()
	plain := encodeGIF(t, m)
	body := plain[:len(plain)-1]
	var b bytes.Buffer
	b.Write(body)
	comment := "GPS 51.5N"
	b.Write([]byte{0x21, 0xFE, byte(len(comment))})
	b.WriteString(comment)
	b.WriteByte(0)
	b.Write([]byte{0x21, 0xFF, 11})
	b.WriteString("XMP DataXMP")
	b.WriteByte(byte(len(xmpPacket[:100])))
	b.WriteString(xmpPacket[:100])
	b.WriteByte(0)
	b.WriteByte(0x3B)
	return b.Bytes()
}

func riffChunk(fourcc string, data []byte) []byte {
	c := make([]byte, 8, 9+len(data))
	copy(c, fourcc)
	binary.LittleEndian.PutUint32(c[4:], uint32(len(data)))
	c = append(c, data...)
	if len(data)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

// webpWithMetadata turns the simple lossless fixture into the extended
// format: VP8X (EXIF and XMP flags set, canvas size from the bitstream),
// the VP8L chunk, then EXIF (with GPS) and XMP chunks, as the spec orders
// them; the RIFF size is recomputed.
func webpWithMetadata(t testing.TB) []byte {
	t.Helper()
	plain := webpFixture(t)
	cfg, err := webp.DecodeConfig(bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	vp8x := make([]byte, 10)
	vp8x[0] = 0x08 | 0x04
	put24 := func(b []byte, v int) { b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16) }
	put24(vp8x[4:], cfg.Width-1)
	put24(vp8x[7:], cfg.Height-1)
	body := riffChunk("VP8X", vp8x)
	body = append(body, plain[12:]...)
	body = append(body, riffChunk("EXIF", exifWithGPS(1))...)
	body = append(body, riffChunk("XMP ", []byte(xmpPacket))...)
	out := []byte("RIFF\x00\x00\x00\x00WEBP")
	out = append(out, body...)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

// notIn fails when any of the markers is in b.
func notIn(t *testing.T, b []byte, markers ...string) {
	t.Helper()
	for _, m := range markers {
		if bytes.Contains(b, []byte(m)) {
			t.Errorf("output still contains %q", m)
		}
	}
}

func samePixels(t *testing.T, a, b image.Image) {
	t.Helper()
	if a.Bounds() != b.Bounds() {
		t.Fatalf("bounds %v != %v", a.Bounds(), b.Bounds())
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if color.RGBA64Model.Convert(a.At(x, y)) != color.RGBA64Model.Convert(b.At(x, y)) {
				t.Fatalf("pixel (%d,%d) differs", x, y)
			}
		}
	}
}

// TestInspectStripsMetadata: each type with location metadata spliced in
// comes out without it, decoding to exactly the pixels it went in with.
func TestInspectStripsMetadata(t *testing.T) {
	img := gradient(40, 30)
	tests := []struct {
		name   string
		data   []byte
		decode func(r *bytes.Reader) (image.Image, error)
	}{
		{"jpeg", jpegWithMetadata(t, img, 1), func(r *bytes.Reader) (image.Image, error) { return jpeg.Decode(r) }},
		{"png", pngWithMetadata(t, img), func(r *bytes.Reader) (image.Image, error) { return png.Decode(r) }},
		{"gif", gifWithMetadata(t, img), func(r *bytes.Reader) (image.Image, error) { return gif.Decode(r) }},
		{"webp", webpWithMetadata(t), func(r *bytes.Reader) (image.Image, error) { return webp.Decode(r) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Contains(tt.data, []byte("GPS")) && !bytes.Contains(tt.data, []byte("N\x00\x00\x00")) {
				t.Fatal("test input carries no location")
			}
			got, err := Inspect(context.Background(), bytes.NewReader(tt.data), testLimits, newTestBudget(t))
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			notIn(t, got.Bytes, "Exif", "EXIF", "eXIf", "GPS", "xmpmeta", "XMP ", "XMP DataXMP", "tEXt", "zTXt", "iTXt", "Photoshop", "trailer")
			// The GPS IFD's rationals (51/1) must be gone as well as its tag names.
			notIn(t, got.Bytes, "\x00\x00\x00\x33\x00\x00\x00\x01\x00\x00\x00\x1e")
			if got.Orientation != 1 {
				t.Errorf("Orientation = %d, want 1", got.Orientation)
			}
			want, err := tt.decode(bytes.NewReader(tt.data))
			if err != nil {
				t.Fatalf("decoding the input: %v", err)
			}
			have, err := tt.decode(bytes.NewReader(got.Bytes))
			if err != nil {
				t.Fatalf("decoding the output: %v", err)
			}
			samePixels(t, want, have)
		})
	}
}

// TestWebPFlagsCleared: the VP8X EXIF and XMP flags go with their chunks,
// and the RIFF size matches the file.
func TestWebPFlagsCleared(t *testing.T) {
	got, err := Inspect(context.Background(), bytes.NewReader(webpWithMetadata(t)), testLimits, newTestBudget(t))
	if err != nil {
		t.Fatal(err)
	}
	b := got.Bytes
	if string(b[12:16]) != "VP8X" {
		t.Fatalf("first chunk %q, want VP8X", b[12:16])
	}
	if flags := b[20]; flags&(0x08|0x04) != 0 {
		t.Errorf("VP8X flags %#x still announce EXIF/XMP", flags)
	}
	if size := binary.LittleEndian.Uint32(b[4:]); int(size) != len(b)-8 {
		t.Errorf("RIFF size %d, file is %d bytes", size, len(b))
	}
}

// TestJPEGOrientationKept: an EXIF Orientation other than 1 survives as the
// only EXIF tag, so viewers still turn the photo upright; GPS does not.
func TestJPEGOrientationKept(t *testing.T) {
	tests := []struct {
		orientation uint16
		wantEXIF    bool
	}{
		{1, false},
		{6, true},
		{8, true},
		{9, false}, // out of range: treated as absent
	}
	for _, tt := range tests {
		t.Run(string(rune('0'+tt.orientation)), func(t *testing.T) {
			got, err := Inspect(context.Background(), bytes.NewReader(jpegWithMetadata(t, gradient(16, 16), tt.orientation)), testLimits, newTestBudget(t))
			if err != nil {
				t.Fatal(err)
			}
			notIn(t, got.Bytes, "GPS", "xmpmeta", "\x88\x25")
			hasEXIF := bytes.Contains(got.Bytes, []byte("Exif\x00\x00"))
			if hasEXIF != tt.wantEXIF {
				t.Fatalf("EXIF kept = %v, want %v", hasEXIF, tt.wantEXIF)
			}
			want := 1
			if tt.wantEXIF {
				want = int(tt.orientation)
				at := bytes.Index(got.Bytes, []byte("Exif\x00\x00"))
				if o := exifOrientation(got.Bytes[at+6:]); o != want {
					t.Errorf("orientation read back from the output = %d, want %d", o, want)
				}
			}
			if got.Orientation != want {
				t.Errorf("Orientation = %d, want %d", got.Orientation, want)
			}
		})
	}
}

// TestTrailingBytesDropped: bytes after a file's end marker (a polyglot's
// appended archive or executable, a vendor trailer) are not stored.
func TestTrailingBytesDropped(t *testing.T) {
	img := gradient(8, 8)
	const payload = "PK\x03\x04 appended zip with GPS 51.5N \x7fELF"
	webpPlain := webpFixture(t)
	tests := []struct {
		name string
		data []byte
	}{
		{"jpeg after EOI", append(encodeJPEG(t, img), payload...)},
		{"png after IEND", append(encodePNG(t, img), payload...)},
		{"gif after trailer", append(encodeGIF(t, img), payload...)},
		{"webp after the RIFF payload", append(webpPlain[:len(webpPlain):len(webpPlain)], payload...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Inspect(context.Background(), bytes.NewReader(tt.data), testLimits, newTestBudget(t))
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			notIn(t, got.Bytes, "PK\x03\x04", "GPS", "\x7fELF")
			if want := len(tt.data) - len(payload); len(got.Bytes) != want {
				t.Errorf("kept %d bytes, want the file's own %d", len(got.Bytes), want)
			}
		})
	}
}
