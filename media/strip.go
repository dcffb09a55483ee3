package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// strip removes location and other descriptive metadata from an accepted
// file by cutting container segments: no pixel is decoded or re-encoded, so
// it is lossless and costs one copy. It returns the cleaned bytes and, for a
// JPEG, the EXIF Orientation kept (1 when absent or for other types).
//
// What goes, per container:
//   - JPEG: every APPn segment except APP0 JFIF/JFXX, APP2 ICC_PROFILE and
//     APP14 Adobe (rendering needs them: colour space and the Adobe
//     transform); so APP1 EXIF and XMP, APP13 Photoshop/IPTC and the rest
//     go, with COM comments and anything after EOI. An EXIF Orientation
//     other than 1 is kept as a new EXIF segment holding that one tag, so a
//     phone photo still displays upright; rotating the pixels instead would
//     mean a lossy re-encode.
//   - PNG: eXIf, tEXt, iTXt and zTXt chunks, and anything after IEND.
//   - WebP: EXIF and "XMP " chunks, their VP8X flags, and anything after the
//     RIFF payload; the RIFF size is rewritten.
//   - GIF: comment extensions and XMP application extensions, and anything
//     after the trailer. (GIF has no EXIF.)
//
// A malformed container is an error: the caller reports the file corrupt.
func strip(typ string, data []byte) ([]byte, int, error) {
	switch typ {
	case TypeJPEG:
		return stripJPEG(data)
	case TypePNG:
		out, err := stripPNG(data)
		return out, 1, err
	case TypeWebP:
		out, err := stripWebP(data)
		return out, 1, err
	case TypeGIF:
		out, err := stripGIF(data)
		return out, 1, err
	}
	return nil, 0, fmt.Errorf("no stripper for %s", typ)
}

// JPEG markers used below (ITU T.81 Table B.1).
const (
	jpegSOI  = 0xD8
	jpegEOI  = 0xD9
	jpegSOS  = 0xDA
	jpegAPP0 = 0xE0
	jpegAPP1 = 0xE1
	jpegAPP2 = 0xE2
	jpegAPPE = 0xEE
	jpegCOM  = 0xFE
)

func stripJPEG(data []byte) ([]byte, int, error) {
	out := make([]byte, 0, len(data))
	out = append(out, 0xFF, jpegSOI)
	orientation := 1
	exifAt := -1 // where in out the first EXIF segment was, to put Orientation back there
	i := 2
	for {
		// Markers may be preceded by any number of 0xFF fill bytes (B.1.1.2).
		if i >= len(data) || data[i] != 0xFF {
			return nil, 0, fmt.Errorf("jpeg: expected a marker at byte %d", i)
		}
		for i < len(data) && data[i] == 0xFF {
			i++
		}
		if i >= len(data) {
			return nil, 0, errTruncated
		}
		marker := data[i]
		i++
		switch {
		case marker == jpegEOI:
			out = append(out, 0xFF, jpegEOI)
			return withOrientation(out, exifAt, orientation), orientation, nil
		case marker >= 0xD0 && marker <= 0xD7, marker == 0x01:
			// RSTn and TEM stand alone, with no length.
			out = append(out, 0xFF, marker)
			continue
		}
		if i+2 > len(data) {
			return nil, 0, errTruncated
		}
		n := int(binary.BigEndian.Uint16(data[i:]))
		if n < 2 || i+n > len(data) {
			return nil, 0, fmt.Errorf("jpeg: segment %#x at byte %d overruns the file", marker, i-2)
		}
		seg := data[i-2 : i+n] // marker, length and payload
		payload := data[i+2 : i+n]
		i += n

		if marker == jpegAPP1 && bytes.HasPrefix(payload, []byte("Exif\x00\x00")) {
			if exifAt < 0 {
				exifAt = len(out)
				orientation = exifOrientation(payload[6:])
			}
			continue
		}
		if (marker >= jpegAPP0 && marker <= 0xEF && !keepJPEGApp(marker, payload)) || marker == jpegCOM {
			continue
		}
		out = append(out, seg...)

		if marker == jpegSOS {
			// Entropy-coded data follows the scan header: copy it up to the
			// next marker that is not a stuffed 0x00 or a restart, so that
			// segments between progressive scans are walked too.
			j := i
			for {
				k := bytes.IndexByte(data[j:], 0xFF)
				if k < 0 {
					return nil, 0, errTruncated
				}
				j += k
				if j+1 >= len(data) {
					return nil, 0, errTruncated
				}
				if next := data[j+1]; next == 0x00 || (next >= 0xD0 && next <= 0xD7) {
					j += 2
					continue
				}
				break
			}
			out = append(out, data[i:j]...)
			i = j
		}
	}
}

// keepJPEGApp says which APPn segments rendering needs.
func keepJPEGApp(marker byte, payload []byte) bool {
	switch marker {
	case jpegAPP0:
		return bytes.HasPrefix(payload, []byte("JFIF\x00")) || bytes.HasPrefix(payload, []byte("JFXX\x00"))
	case jpegAPP2:
		return bytes.HasPrefix(payload, []byte("ICC_PROFILE\x00"))
	case jpegAPPE:
		return bytes.HasPrefix(payload, []byte("Adobe"))
	}
	return false
}

// exifOrientation reads tag 0x0112 from IFD0 of a TIFF-structured EXIF
// block; 1 (upright) when absent, malformed or out of range, since a bad
// EXIF block is no reason to refuse the pixels.
func exifOrientation(tiff []byte) int {
	if len(tiff) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(tiff[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	ifd := int(bo.Uint32(tiff[4:]))
	if ifd < 8 || ifd+2 > len(tiff) {
		return 1
	}
	count := int(bo.Uint16(tiff[ifd:]))
	for e := 0; e < count; e++ {
		at := ifd + 2 + 12*e
		if at+12 > len(tiff) {
			return 1
		}
		// Orientation is one SHORT (type 3), held in the entry itself.
		if bo.Uint16(tiff[at:]) == 0x0112 && bo.Uint16(tiff[at+2:]) == 3 {
			if v := int(bo.Uint16(tiff[at+8:])); v >= 1 && v <= 8 {
				return v
			}
			return 1
		}
	}
	return 1
}

// withOrientation inserts, at out[at:], an APP1 EXIF segment holding only
// IFD0 with the Orientation tag; nothing when orientation is 1.
func withOrientation(out []byte, at, orientation int) []byte {
	if at < 0 || orientation == 1 {
		return out
	}
	seg := []byte{
		0xFF, jpegAPP1, 0x00, 34, // length: 2 + 6 + 8 + 2 + 12 + 4
		'E', 'x', 'i', 'f', 0, 0,
		'M', 'M', 0x00, 0x2A, 0, 0, 0, 8, // big-endian TIFF, IFD0 at 8
		0, 1, // one entry
		0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, byte(orientation), 0, 0, // Orientation SHORT x1
		0, 0, 0, 0, // no next IFD
	}
	res := make([]byte, 0, len(out)+len(seg))
	res = append(res, out[:at]...)
	res = append(res, seg...)
	return append(res, out[at:]...)
}

func stripPNG(data []byte) ([]byte, error) {
	out := make([]byte, 0, len(data))
	out = append(out, pngSignature...)
	i := len(pngSignature)
	for {
		if i+8 > len(data) {
			return nil, errTruncated
		}
		n := int64(binary.BigEndian.Uint32(data[i:]))
		typ := string(data[i+4 : i+8])
		end := int64(i) + 12 + n // length, type, data, CRC
		if end > int64(len(data)) {
			return nil, fmt.Errorf("png: chunk %q at byte %d overruns the file", typ, i)
		}
		switch typ {
		case "eXIf", "tEXt", "iTXt", "zTXt":
		default:
			out = append(out, data[i:end]...)
		}
		i = int(end)
		if typ == "IEND" {
			return out, nil
		}
	}
}

// VP8X flag bits (WebP container spec, "Extended File Format").
const (
	vp8xEXIF = 0x08
	vp8xXMP  = 0x04

	vp8xAnimation = 0x02
)

func stripWebP(data []byte) ([]byte, error) {
	size := int64(binary.LittleEndian.Uint32(data[4:]))
	if size < 4 || 8+size > int64(len(data)) {
		return nil, fmt.Errorf("webp: RIFF size %d overruns the file", size)
	}
	body := data[12 : 8+size]
	out := make([]byte, 12, len(data))
	copy(out, data[:12])
	for i := 0; i < len(body); {
		if i+8 > len(body) {
			return nil, errTruncated
		}
		fourcc := string(body[i : i+4])
		n := int64(binary.LittleEndian.Uint32(body[i+4:]))
		end := int64(i) + 8 + n + n&1 // chunks are padded to an even size
		if end > int64(len(body)) {
			if int64(i)+8+n == int64(len(body)) {
				end = int64(len(body)) // a missing last pad byte is tolerated by decoders
			} else {
				return nil, fmt.Errorf("webp: chunk %q overruns the RIFF payload", fourcc)
			}
		}
		switch fourcc {
		case "EXIF", "XMP ":
		case "VP8X":
			at := len(out)
			out = append(out, body[i:end]...)
			if n >= 1 {
				out[at+8] &^= vp8xEXIF | vp8xXMP
			}
		default:
			out = append(out, body[i:end]...)
		}
		i = int(end)
	}
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out, nil
}

func stripGIF(data []byte) ([]byte, error) {
	const header = 6 + 7 // signature and version, logical screen descriptor
	if len(data) < header {
		return nil, errTruncated
	}
	i := header
	if flags := data[10]; flags&0x80 != 0 {
		i += 3 << ((flags & 7) + 1) // global colour table
	}
	if i > len(data) {
		return nil, errTruncated
	}
	out := make([]byte, 0, len(data))
	out = append(out, data[:i]...)

	// subBlocks returns the end of the data sub-blocks starting at j.
	subBlocks := func(j int) (int, error) {
		for {
			if j >= len(data) {
				return 0, errTruncated
			}
			n := int(data[j])
			j++
			if n == 0 {
				return j, nil
			}
			j += n
		}
	}
	for {
		if i >= len(data) {
			return nil, errTruncated
		}
		start := i
		switch data[i] {
		case 0x3B: // trailer
			return append(out, 0x3B), nil
		case 0x21: // extension: label, then sub-blocks
			if i+2 > len(data) {
				return nil, errTruncated
			}
			label := data[i+1]
			end, err := subBlocks(i + 2)
			if err != nil {
				return nil, err
			}
			i = end
			xmp := label == 0xFF && bytes.HasPrefix(data[start+2:], []byte("\x0bXMP DataXMP"))
			if label == 0xFE || xmp {
				continue
			}
			out = append(out, data[start:end]...)
		case 0x2C: // image descriptor, optional local colour table, LZW data
			if i+10 > len(data) {
				return nil, errTruncated
			}
			j := i + 10
			if flags := data[i+9]; flags&0x80 != 0 {
				j += 3 << ((flags & 7) + 1)
			}
			j++ // LZW minimum code size
			end, err := subBlocks(j)
			if err != nil {
				return nil, err
			}
			out = append(out, data[start:end]...)
			i = end
		default:
			return nil, fmt.Errorf("gif: unknown block %#x at byte %d", data[i], i)
		}
	}
}
