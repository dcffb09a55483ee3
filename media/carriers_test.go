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

// The carriers a tester found surviving the strip when it removed known
// metadata only: each is text ("GPS ...") in a segment the old list did
// not name.
const secret = "GPS 48.8584N 2.2945E"

// jpegWithCarriers puts, after SOI: a JFIF APP0 with a 2x1 thumbnail whose
// pixels spell part of the secret, a JFXX APP0 thumbnail holding it, and an
// APP14 Adobe segment with the secret after its 12 defined bytes.
func jpegWithCarriers(t testing.TB) []byte {
	t.Helper()
	plain := encodeJPEG(t, gradient(24, 16))
	jfif := []byte("JFIF\x00\x01\x02\x00\x00\x48\x00\x48\x02\x01GPS 48") // 72 dpi, thumbnail 2x1 RGB
	jfxx := append([]byte("JFXX\x00\x10\xFF\xD8"), secret...)
	adobe := append([]byte("Adobe\x00\x64\x00\x00\x00\x00\x01"), secret...) // transform 1: YCbCr
	var b bytes.Buffer
	b.Write(plain[:2])
	b.Write(jpegSegment(0xE0, jfif))
	b.Write(jpegSegment(0xE0, jfxx))
	b.Write(jpegSegment(0xEE, adobe))
	b.Write(plain[2:])
	return b.Bytes()
}

// pngWithCarriers puts, after IHDR, a private gpSi chunk and a C2PA caBX
// chunk holding the secret, bKGD, an unknown tEST chunk, a gAMA of the
// wrong length holding the secret, and gAMA and pHYs, which render.
func pngWithCarriers(t testing.TB) []byte {
	t.Helper()
	plain := encodePNG(t, gradient(24, 16))
	var b bytes.Buffer
	b.Write(plain[:33])
	b.Write(pngChunk("gAMA", []byte{0, 0, 0xB1, 0x8F}))
	b.Write(pngChunk("pHYs", []byte{0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1}))
	b.Write(pngChunk("gpSi", []byte(secret)))
	b.Write(pngChunk("caBX", []byte("jumb c2pa manifest "+secret)))
	b.Write(pngChunk("bKGD", []byte{0, 0, 0, 0, 0, 0}))
	b.Write(pngChunk("tEST", []byte(secret)))
	b.Write(pngChunk("gAMA", []byte(secret)))
	b.Write(plain[33:])
	return b.Bytes()
}

// webpWithCarriers is the lossless fixture in the extended format with an
// ICC profile, an unknown chunk holding the secret, and every VP8X flag
// that is not animation set (EXIF, XMP, and a reserved bit).
func webpWithCarriers(t testing.TB) []byte {
	t.Helper()
	plain := webpFixture(t)
	cfg, err := webp.DecodeConfig(bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	vp8x := make([]byte, 10)
	vp8x[0] = vp8xICC | 0x08 | 0x04 | 0x01
	put24 := func(b []byte, v int) { b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16) }
	put24(vp8x[4:], cfg.Width-1)
	put24(vp8x[7:], cfg.Height-1)
	body := riffChunk("VP8X", vp8x)
	body = append(body, riffChunk("ICCP", []byte("not a real profile, but kept"))...)
	body = append(body, plain[12:]...)
	body = append(body, riffChunk("LOCA", []byte(secret))...)
	out := []byte("RIFF\x00\x00\x00\x00WEBP")
	out = append(out, body...)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

// gifExtension is an extension block: introducer, label, the data in
// sub-blocks of up to 255 bytes, terminator.
func gifExtension(label byte, data ...[]byte) []byte {
	b := []byte{0x21, label}
	for _, d := range data {
		b = append(b, byte(len(d)))
		b = append(b, d...)
	}
	return append(b, 0)
}

// gifWithCarriers inserts, before the first block of a GIF, an
// application extension of its own holding the secret, a NETSCAPE2.0
// loop extension, and a graphic control extension followed by a
// plain-text extension drawing the secret. frames > 1 makes it animated.
func gifWithCarriers(t testing.TB, frames int) []byte {
	t.Helper()
	pal := color.Palette{color.Black, color.White, color.RGBA{200, 30, 40, 255}}
	anim := &gif.GIF{}
	for f := range frames {
		m := image.NewPaletted(image.Rect(0, 0, 12, 10), pal)
		for i := range m.Pix {
			m.Pix[i] = uint8((i + f) % 3)
		}
		anim.Image = append(anim.Image, m)
		anim.Delay = append(anim.Delay, 10)
	}
	var enc bytes.Buffer
	if err := gif.EncodeAll(&enc, anim); err != nil {
		t.Fatal(err)
	}
	plain := enc.Bytes()
	headerEnd, _, err := walkGIF(plain)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.Write(plain[:headerEnd])
	b.Write(gifExtension(0xFF, []byte("GEOTAG01abc"), []byte(secret)))
	if frames == 1 {
		// Single frames get no loop extension from the encoder: one of
		// its own is metadata.
		b.Write(gifExtension(0xFF, []byte("NETSCAPE2.0"), []byte{1, 0, 0}))
	}
	b.Write(gifExtension(0xF9, []byte{0, 0, 0, 0}))
	b.Write(gifExtension(0x01, []byte{0, 0, 0, 0, 12, 0, 10, 0, 8, 8, 1, 0}, []byte(secret)))
	b.Write(plain[headerEnd:])
	return b.Bytes()
}

// TestInspectKeepsOnlyWhatRenders: each carrier is gone from what is
// stored, what renders stays, and the stored file decodes to exactly the
// upload's pixels (every frame, with its timing, for a GIF).
func TestInspectKeepsOnlyWhatRenders(t *testing.T) {
	decodeWith := func(f func(r *bytes.Reader) (image.Image, error)) func(*testing.T, []byte, []byte) {
		return func(t *testing.T, in, out []byte) {
			want, err := f(bytes.NewReader(in))
			if err != nil {
				t.Fatalf("decoding the input: %v", err)
			}
			have, err := f(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("decoding the output: %v", err)
			}
			samePixels(t, want, have)
		}
	}
	sameGIF := func(wantLoop bool) func(*testing.T, []byte, []byte) {
		return func(t *testing.T, in, out []byte) {
			want, err := gif.DecodeAll(bytes.NewReader(in))
			if err != nil {
				t.Fatalf("decoding the input: %v", err)
			}
			have, err := gif.DecodeAll(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("decoding the output: %v", err)
			}
			if len(have.Image) != len(want.Image) {
				t.Fatalf("%d frames, want %d", len(have.Image), len(want.Image))
			}
			for i := range want.Image {
				samePixels(t, want.Image[i], have.Image[i])
				if have.Delay[i] != want.Delay[i] || have.Disposal[i] != want.Disposal[i] {
					t.Errorf("frame %d: delay %d disposal %d, want %d %d", i, have.Delay[i], have.Disposal[i], want.Delay[i], want.Disposal[i])
				}
			}
			if hasLoop := bytes.Contains(out, []byte("NETSCAPE2.0")); hasLoop != wantLoop {
				t.Errorf("NETSCAPE2.0 kept = %v, want %v", hasLoop, wantLoop)
			}
			if wantLoop && have.LoopCount != want.LoopCount {
				t.Errorf("loop count %d, want %d", have.LoopCount, want.LoopCount)
			}
		}
	}
	tests := []struct {
		name  string
		data  []byte
		gone  []string // byte strings that must not be stored
		kept  []string // byte strings that must be
		check func(t *testing.T, in, out []byte)
	}{
		{"jpeg: JFIF thumbnail, JFXX thumbnail, bytes after Adobe's 12", jpegWithCarriers(t),
			[]string{"GPS", "JFXX"},
			// JFIF without its thumbnail (length 16, 0x0), Adobe cut to 12 bytes (length 14).
			[]string{"\xFF\xE0\x00\x10JFIF\x00\x01\x02\x00\x00\x48\x00\x48\x00\x00", "\xFF\xEE\x00\x0EAdobe\x00\x64\x00\x00\x00\x00\x01\xFF"},
			decodeWith(func(r *bytes.Reader) (image.Image, error) { return jpeg.Decode(r) })},
		{"png: private gpSi, C2PA caBX, bKGD, unknown, malformed gAMA", pngWithCarriers(t),
			[]string{"GPS", "gpSi", "caBX", "bKGD", "tEST"},
			[]string{"gAMA\x00\x00\xB1\x8F", "pHYs"},
			decodeWith(func(r *bytes.Reader) (image.Image, error) { return png.Decode(r) })},
		{"webp: unknown chunk, stale flags", webpWithCarriers(t),
			[]string{"GPS", "LOCA"},
			[]string{"ICCP"},
			func(t *testing.T, in, out []byte) {
				decodeWith(func(r *bytes.Reader) (image.Image, error) { return webp.Decode(r) })(t, in, out)
				if flags := out[20]; flags != vp8xICC {
					t.Errorf("VP8X flags %#x, want only ICC (%#x)", flags, vp8xICC)
				}
				if size := binary.LittleEndian.Uint32(out[4:]); int(size) != len(out)-8 {
					t.Errorf("RIFF size %d, file is %d bytes", size, len(out))
				}
			}},
		{"gif: application and plain-text extensions, a still's loop", gifWithCarriers(t, 1),
			[]string{"GPS", "GEOTAG", "NETSCAPE"}, nil, sameGIF(false)},
		{"gif animated: application and plain-text extensions", gifWithCarriers(t, 3),
			[]string{"GPS", "GEOTAG"}, []string{"NETSCAPE2.0"}, sameGIF(true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range tt.gone {
				if !bytes.Contains(tt.data, []byte(s)) {
					t.Fatalf("test input lacks %q", s)
				}
			}
			got, err := Inspect(context.Background(), bytes.NewReader(tt.data), testLimits, newTestBudget(t))
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			notIn(t, got.Bytes, tt.gone...)
			for _, s := range tt.kept {
				if !bytes.Contains(got.Bytes, []byte(s)) {
					t.Errorf("output lost %q, which renders", s)
				}
			}
			tt.check(t, tt.data, got.Bytes)
		})
	}
}
