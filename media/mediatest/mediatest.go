// Package mediatest makes the image files tests upload: sound ones, one
// carrying GPS location metadata, and the hostile ones PostFlow must refuse
// (a decompression bomb, a renamed executable, a corrupt file). Each is
// built in memory; nothing is read from disk.
package mediatest

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
)

// Gradient is a w x h image whose pixels differ, so that the wrong bytes
// never decode equal to it by chance.
func Gradient(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), uint8(x ^ y), 255})
		}
	}
	return m
}

// JPEG is Gradient(w, h) encoded at quality 90.
func JPEG(w, h int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, Gradient(w, h), &jpeg.Options{Quality: 90}); err != nil {
		panic(err) // encoding into memory does not fail
	}
	return b.Bytes()
}

// PNG is Gradient(w, h) as a PNG.
func PNG(w, h int) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, Gradient(w, h)); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// GPSMarker is a string found in JPEGWithGPS's location metadata (the GPS
// IFD's latitude reference and its neighbours), absent once it is stripped.
const GPSMarker = "GPS 51.5N"

// JPEGWithGPS is JPEG(w, h) with, right after SOI, an EXIF APP1 segment
// whose GPS IFD holds a latitude (51° 30' N), and a comment segment that
// names the place (GPSMarker).
func JPEGWithGPS(w, h int) []byte {
	plain := JPEG(w, h)
	var b bytes.Buffer
	b.Write(plain[:2])
	b.Write(jpegSegment(0xE1, append([]byte("Exif\x00\x00"), exifWithGPS()...)))
	b.Write(jpegSegment(0xFE, []byte("shot at "+GPSMarker)))
	b.Write(plain[2:])
	return b.Bytes()
}

// HasEXIF reports whether a JPEG carries an EXIF APP1 segment.
func HasEXIF(b []byte) bool { return bytes.Contains(b, []byte("Exif\x00\x00")) }

// PNGBomb is a PNG whose header claims 50,000 x 50,000 RGBA pixels in about
// 80 bytes, every CRC right: decoded, it would need 10 GB.
func PNGBomb() []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 50_000)
	binary.BigEndian.PutUint32(ihdr[4:], 50_000)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(make([]byte, 64))
	_ = zw.Close()
	b := []byte("\x89PNG\r\n\x1a\n")
	b = append(b, pngChunk("IHDR", ihdr)...)
	b = append(b, pngChunk("IDAT", z.Bytes())...)
	return append(b, pngChunk("IEND", nil)...)
}

// ELF is the start of a 64-bit Linux executable: what a renamed program
// (photo.jpg) begins with.
func ELF() []byte {
	b := []byte("\x7fELF\x02\x01\x01\x00")
	return append(b, make([]byte, 120)...)
}

// CorruptJPEG is JPEG(w, h) cut in half: its header is sound, its scan is not.
func CorruptJPEG(w, h int) []byte {
	b := JPEG(w, h)
	return b[:len(b)/2]
}

func pngChunk(typ string, data []byte) []byte {
	c := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(c, uint32(len(data)))
	copy(c[4:], typ)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

func jpegSegment(marker byte, payload []byte) []byte {
	s := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(s[2:], uint16(len(payload)+2))
	return append(s, payload...)
}

// exifWithGPS is a big-endian TIFF block: IFD0 holds a GPSInfo pointer;
// the GPS IFD holds GPSLatitudeRef "N" and GPSLatitude 51/1 30/1 0/1.
func exifWithGPS() []byte {
	var b bytes.Buffer
	be := binary.BigEndian
	w16 := func(v uint16) { _ = binary.Write(&b, be, v) }
	w32 := func(v uint32) { _ = binary.Write(&b, be, v) }
	b.WriteString("MM")
	w16(0x2A)
	w32(8)
	// IFD0 at 8: one entry -> 2 + 12 + 4 = 18 bytes, GPS IFD at 26.
	w16(1)
	w16(0x8825)
	w16(4)
	w32(1)
	w32(26)
	w32(0)
	// GPS IFD at 26: two entries -> 30 bytes, rationals at 56.
	w16(2)
	w16(0x0001)
	w16(2)
	w32(2)
	b.WriteString("N\x00\x00\x00")
	w16(0x0002)
	w16(5)
	w32(3)
	w32(56)
	w32(0)
	for _, v := range []uint32{51, 1, 30, 1, 0, 1} {
		w32(v)
	}
	return b.Bytes()
}
