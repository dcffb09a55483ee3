package media

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

var testLimits = Limits{MaxBytes: 1 << 20, MaxPixels: 10_000_000}

// gradient is a small image with distinct pixels, so that a decode of the
// wrong bytes would not compare equal by chance.
func gradient(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), uint8(x ^ y), 255})
		}
	}
	return m
}

func encodeJPEG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeGIF(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// webpFixture is testdata/gopher-doc.1bpp.lossless.webp, copied unchanged
// from golang.org/x/image v0.48.0's testdata (BSD-3-Clause, The Go Authors):
// a 442-byte simple-format lossless (VP8L) WebP.
func webpFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/gopher-doc.1bpp.lossless.webp")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pngChunk(typ string, data []byte) []byte {
	c := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(c, uint32(len(data)))
	copy(c[4:], typ)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// pngBomb is a 50,000 x 50,000 RGBA PNG in about 80 bytes: IHDR claims the
// size, the IDAT holds a few zlib bytes; every CRC is right, so only the
// pixel budget stops it. Decoded, it would need 10 GB.
func pngBomb(t testing.TB) []byte {
	t.Helper()
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 50_000)
	binary.BigEndian.PutUint32(ihdr[4:], 50_000)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(make([]byte, 64))
	_ = zw.Close()
	b := []byte(pngSignature)
	b = append(b, pngChunk("IHDR", ihdr)...)
	b = append(b, pngChunk("IDAT", z.Bytes())...)
	return append(b, pngChunk("IEND", nil)...)
}

// webpBomb is the fixture wrapped in a VP8X chunk whose canvas is 1x1,
// with its VP8L header rewritten to claim 16384x16384 (the format's
// largest): DecodeConfig sees only the canvas, and a decoder trusting the
// bitstream would allocate 1 GiB.
func webpBomb(t testing.TB) []byte {
	t.Helper()
	plain := webpFixture(t)
	vp8l := append([]byte(nil), plain[12:]...)
	// VP8L header (after the 8-byte chunk header and the 0x2f signature):
	// 14 bits width-1, 14 bits height-1, 1 bit alpha, 3 bits version, LSB first.
	bits := binary.LittleEndian.Uint32(vp8l[9:])
	bits = bits&^(1<<28-1) | 16383 | 16383<<14
	binary.LittleEndian.PutUint32(vp8l[9:], bits)
	out := []byte("RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00")
	out = append(out, make([]byte, 10)...) // no flags, canvas 1x1
	out = append(out, vp8l...)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

// animatedWebP is the fixture behind a VP8X chunk with the animation flag
// and an ANIM chunk; its frames are not real ANMF chunks, since Inspect
// must refuse it on the flag alone.
func animatedWebP(t testing.TB) []byte {
	t.Helper()
	plain := webpFixture(t)
	out := []byte("RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00")
	vp8x := make([]byte, 10)
	vp8x[0] = vp8xAnimation
	vp8x[4], vp8x[7] = 74, 99 // canvas 75x100, minus one
	out = append(out, vp8x...)
	out = append(out, "ANIM\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00"...)
	out = append(out, plain[12:]...)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

// animatedPNG is an APNG: a PNG with an acTL chunk (2 frames, looping)
// after IHDR (signature 8 bytes + IHDR 25 bytes).
func animatedPNG(t testing.TB) []byte {
	t.Helper()
	plain := encodePNG(t, gradient(20, 10))
	out := append([]byte{}, plain[:33]...)
	out = append(out, pngChunk("acTL", []byte{0, 0, 0, 2, 0, 0, 0, 0})...)
	return append(out, plain[33:]...)
}

func TestInspect(t *testing.T) {
	img := gradient(40, 30)
	jpg := encodeJPEG(t, img)
	pngData := encodePNG(t, img)
	corruptPNG := append([]byte(nil), pngData...)
	corruptPNG[len(corruptPNG)-20] ^= 0xFF // inside IDAT: the CRC no longer matches

	tests := []struct {
		name     string
		data     []byte
		limits   Limits
		wantType string
		wantW    int
		wantH    int
		wantErr  error
		check    func(t *testing.T, err error)
	}{
		{name: "jpeg", data: jpg, wantType: TypeJPEG, wantW: 40, wantH: 30},
		{name: "png", data: pngData, wantType: TypePNG, wantW: 40, wantH: 30},
		{name: "gif", data: encodeGIF(t, img), wantType: TypeGIF, wantW: 40, wantH: 30},
		{name: "webp lossless", data: webpFixture(t), wantType: TypeWebP, wantW: 75, wantH: 100},
		{name: "truncated jpeg", data: jpg[:len(jpg)/2], wantErr: ErrCorrupt},
		{name: "truncated png", data: pngData[:len(pngData)-30], wantErr: ErrCorrupt},
		{name: "png with a flipped byte", data: corruptPNG, wantErr: ErrCorrupt},
		{name: "jpeg header only", data: jpg[:20], wantErr: ErrCorrupt},
		{name: "truncated webp", data: webpFixture(t)[:200], wantErr: ErrCorrupt},
		{name: "pdf", data: []byte("%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"), wantErr: ErrUnsupportedType,
			check: wantSniffed("application/pdf")},
		{name: "elf renamed .png", data: []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"), wantErr: ErrUnsupportedType,
			check: wantSniffed("application/x-elf")},
		{name: "pe renamed .png", data: append([]byte("MZ\x90\x00\x03\x00\x00\x00"), make([]byte, 56)...), wantErr: ErrUnsupportedType,
			check: wantSniffed("application/vnd.microsoft.portable-executable")},
		{name: "html", data: []byte("<!DOCTYPE html><html><script>alert(1)</script></html>"), wantErr: ErrUnsupportedType,
			check: wantSniffed("text/html; charset=utf-8")},
		{name: "empty", data: nil, wantErr: ErrUnsupportedType},
		{name: "riff that is not webp", data: []byte("RIFF\x24\x00\x00\x00WAVEfmt "), wantErr: ErrUnsupportedType},
		{name: "png bomb 50000x50000", data: pngBomb(t), wantErr: ErrTooManyPixels, check: func(t *testing.T, err error) {
			var e *TooManyPixelsError
			if !errors.As(err, &e) || e.Width != 50_000 || e.Height != 50_000 {
				t.Errorf("got %v, want 50000x50000 named", err)
			}
		}},
		// x/image compares the bitstream's size with the VP8X canvas before
		// allocating (webp/decode.go), so this is refused as corrupt; the row
		// guards that behaviour across upgrades.
		{name: "webp canvas 1x1 over a 16384x16384 bitstream", data: webpBomb(t), wantErr: ErrCorrupt},
		{name: "animated webp", data: animatedWebP(t), wantErr: ErrUnsupportedType, check: wantSniffed("image/webp; animated")},
		{name: "animated png", data: animatedPNG(t), wantErr: ErrUnsupportedType, check: wantSniffed("image/apng")},
		{name: "over the pixel budget", data: pngData, limits: Limits{MaxBytes: 1 << 20, MaxPixels: 40*30 - 1}, wantErr: ErrTooManyPixels},
		{name: "exactly the pixel budget", data: pngData, limits: Limits{MaxBytes: 1 << 20, MaxPixels: 40 * 30}, wantType: TypePNG, wantW: 40, wantH: 30},
		{name: "one byte too many", data: pngData, limits: Limits{MaxBytes: int64(len(pngData)) - 1, MaxPixels: 1e7}, wantErr: ErrTooLarge,
			check: func(t *testing.T, err error) {
				var e *TooLargeError
				if !errors.As(err, &e) || e.MaxBytes != int64(len(pngData))-1 {
					t.Errorf("got %v, want the limit named", err)
				}
			}},
		{name: "exactly the byte limit", data: pngData, limits: Limits{MaxBytes: int64(len(pngData)), MaxPixels: 1e7}, wantType: TypePNG, wantW: 40, wantH: 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limits := tt.limits
			if limits == (Limits{}) {
				limits = testLimits
			}
			got, err := Inspect(context.Background(), bytes.NewReader(tt.data), limits, newTestBudget(t))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Inspect: err = %v, want %v", err, tt.wantErr)
				}
				if tt.check != nil {
					tt.check(t, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if got.Type != tt.wantType || got.Width != tt.wantW || got.Height != tt.wantH {
				t.Errorf("got %s %dx%d, want %s %dx%d", got.Type, got.Width, got.Height, tt.wantType, tt.wantW, tt.wantH)
			}
			if got.Size != int64(len(got.Bytes)) || got.Size == 0 {
				t.Errorf("Size = %d, len(Bytes) = %d", got.Size, len(got.Bytes))
			}
		})
	}
}

func wantSniffed(typ string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		var e *UnsupportedTypeError
		if !errors.As(err, &e) || e.Sniffed != typ {
			t.Errorf("got %v, want sniffed %q", err, typ)
		}
	}
}

func TestInspectInvalidLimitsAndReadError(t *testing.T) {
	if _, err := Inspect(context.Background(), bytes.NewReader(nil), Limits{}, newTestBudget(t)); err == nil {
		t.Error("zero limits accepted")
	}
	_, err := Inspect(context.Background(), iotest.ErrReader(errors.New("connection reset")), testLimits, newTestBudget(t))
	if err == nil || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrUnsupportedType) {
		t.Errorf("read error = %v, want the reader's own error, no 4xx sentinel", err)
	}
}

// TestBombsAreNotAllocated: refusing a file whose header claims a huge
// image must cost the header's bytes, not the gigabytes the pixels would
// need.
func TestBombsAreNotAllocated(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		wantErr error
	}{
		{"png 50000x50000", pngBomb(t), ErrTooManyPixels},
		{"webp 1x1 canvas, 16384x16384 bitstream", webpBomb(t), ErrCorrupt},
	}
	limits := Limits{MaxBytes: 1 << 20, MaxPixels: 50_000_000}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			const runs = 10
			for range runs {
				if _, err := Inspect(context.Background(), bytes.NewReader(tt.data), limits, newTestBudget(t)); !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			}
			runtime.ReadMemStats(&after)
			if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 64<<10 {
				t.Errorf("refusing the bomb allocated %d bytes a run, want under 64 KiB", per)
			}
		})
	}
}

// TestSniff: a PNG named .exe is a PNG, an ELF named
// .png is an ELF; only bytes decide.
func TestSniff(t *testing.T) {
	tests := []struct {
		data string
		want string
	}{
		{"\xFF\xD8\xFF\xE0", TypeJPEG},
		{pngSignature, TypePNG},
		{"GIF87a", TypeGIF},
		{"GIF89a", TypeGIF},
		{"RIFF\x00\x00\x00\x00WEBPVP8 ", TypeWebP},
		{"RIFF\x00\x00\x00\x00AVI ", "video/avi"},
		{"\x7fELF", "application/x-elf"},
		{"MZ\x90\x00", "application/vnd.microsoft.portable-executable"},
		{"#!/bin/sh\n", "text/x-shellscript"},
		{"%PDF-1.4", "application/pdf"},
		{"<svg xmlns='http://www.w3.org/2000/svg'/>", "text/plain; charset=utf-8"}, // refused either way,
	}
	for _, tt := range tests {
		if got := Sniff([]byte(tt.data)); !strings.EqualFold(got, tt.want) {
			t.Errorf("Sniff(%q) = %q, want %q", tt.data, got, tt.want)
		}
	}
}

// newTestBudget is a decode budget of DefaultDecodeMemory for one test.
func newTestBudget(t testing.TB) *Budget {
	t.Helper()
	b, err := NewBudget(DefaultDecodeMemory)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
