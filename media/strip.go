package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
)

// strip removes metadata from an accepted file by cutting container
// segments: no pixel is decoded or re-encoded, so it is lossless and costs
// one copy. It returns the cleaned bytes and, for a JPEG, the EXIF
// Orientation kept (1 when absent or for other types).
//
// It keeps only what renders, per container, rather than removing known
// carriers (EXIF, XMP, ...): a private or future chunk can hold anything
// (GPS coordinates in a camera maker's own PNG chunk, a C2PA manifest), so
// whatever is not on the list goes, and anything after the end of the image.
//   - JPEG: the frame, scan, table and restart segments; APP0 JFIF
//     rewritten without its thumbnail (JFXX thumbnails go); APP2
//     ICC_PROFILE; APP14 Adobe cut to its 12 defined bytes (it says how
//     the colour is transformed). An EXIF Orientation other than 1 is kept
//     as a new EXIF segment holding that one tag, so a phone photo still
//     displays upright; rotating the pixels instead would mean a lossy
//     re-encode.
//   - PNG: the critical chunks IHDR, PLTE, IDAT, IEND, and the ancillary
//     chunks that change how pixels show: tRNS, gAMA, cHRM, sRGB, iCCP,
//     cICP, mDCV, cLLI (colour and transparency), sBIT (sample precision)
//     and pHYs (pixel density: macOS and Safari size HiDPI screenshots by
//     it). bKGD goes (browsers never paint it), and so would APNG's acTL,
//     fcTL and fdAT, but Inspect refuses an APNG before this.
//   - WebP: VP8, VP8L, VP8X, ALPH and ICCP (ANIM and ANMF are refused
//     before this); the VP8X flags then claim only what is left (alpha,
//     ICC), and the RIFF size is rewritten.
//   - GIF: the image blocks and their graphic control extensions; the
//     NETSCAPE2.0 application extension (the loop count) only when there
//     is more than one frame; every other application, comment and
//     plain-text extension goes (GIF has no EXIF).
//
// ICC profiles (JPEG APP2, PNG iCCP, WebP ICCP) are kept whole: they are
// the colours, and rewriting their tag table is a colour-management
// library's work. Their desc and cprt tags are free text, in practice the
// profile's name and its maker's copyright written by the camera or editor,
// not by the user; a crafted profile can carry any text, which a user
// uploading their own crafted file already chose to publish.
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
		if marker >= jpegAPP0 && marker <= 0xEF {
			out = appendJPEGApp(out, marker, payload)
			continue
		}
		if !keepJPEGMarker(marker) {
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

// keepJPEGMarker says which non-APPn segments rendering needs: SOFn, DHT,
// DAC (0xC0-0xCF but the reserved JPG, 0xC8), DQT, DNL, DRI and SOS. COM,
// JPGn, DHP, EXP and reserved markers go.
func keepJPEGMarker(marker byte) bool {
	switch {
	case marker >= 0xC0 && marker <= 0xCF:
		return marker != 0xC8
	case marker == 0xDB, marker == 0xDC, marker == 0xDD, marker == jpegSOS:
		return true
	}
	return false
}

// appendJPEGApp appends what rendering needs of an APPn segment (marker,
// payload after the length): a JFIF header without its thumbnail, an ICC
// profile chunk, an Adobe segment's 12 defined bytes (Adobe TN 5116:
// "Adobe", version, flags0, flags1, transform); nothing of any other.
func appendJPEGApp(out []byte, marker byte, payload []byte) []byte {
	var keep []byte
	switch {
	case marker == jpegAPP0 && bytes.HasPrefix(payload, []byte("JFIF\x00")):
		// Version, units and densities; the thumbnail's size set to 0x0
		// and its pixels dropped. A shorter one has no room for more.
		keep = payload
		if len(payload) >= 14 {
			keep = append(append([]byte(nil), payload[:12]...), 0, 0)
		}
	case marker == jpegAPP2 && bytes.HasPrefix(payload, []byte("ICC_PROFILE\x00")):
		keep = payload
	case marker == jpegAPPE && bytes.HasPrefix(payload, []byte("Adobe")) && len(payload) >= 12:
		keep = payload[:12]
	default:
		return out
	}
	out = append(out, 0xFF, marker)
	out = binary.BigEndian.AppendUint16(out, uint16(2+len(keep)))
	return append(out, keep...)
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
		if size, ok := pngKept[typ]; ok && (size < 0 || int64(size) == n) {
			out = append(out, data[i:end]...)
		}
		i = int(end)
		if typ == "IEND" {
			return out, nil
		}
	}
}

// pngKept lists the PNG chunks kept (see strip), with the data length a
// fixed-size one must have (PNG 3rd edition, §11), -1 for any: a chunk of
// another length is malformed, and decoders ignore it, so it goes too.
var pngKept = map[string]int{
	"IHDR": -1, "PLTE": -1, "IDAT": -1, "IEND": -1,
	"tRNS": -1, "iCCP": -1, "sBIT": -1,
	"gAMA": 4, "cHRM": 32, "sRGB": 1, "cICP": 4, "mDCV": 24, "cLLI": 8, "pHYs": 9,
}

// VP8X flag bits (WebP container spec, "Extended File Format").
const (
	vp8xICC       = 0x20
	vp8xAlpha     = 0x10
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
	vp8xAt, icc := -1, false
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
		case "VP8X":
			vp8xAt = len(out)
			out = append(out, body[i:end]...)
		case "ICCP":
			icc = true
			out = append(out, body[i:end]...)
		case "VP8 ", "VP8L", "ALPH":
			out = append(out, body[i:end]...)
		}
		i = int(end)
	}
	if vp8xAt >= 0 && len(out) > vp8xAt+8 {
		// The flags byte, then three reserved ones: only what is left
		// is claimed.
		flags := out[vp8xAt+8] & vp8xAlpha
		if icc {
			flags |= vp8xICC
		}
		out[vp8xAt+8] = flags
	}
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out, nil
}

// gifBlock is one block of a GIF after its header and global colour
// table: data[Start:End] of the file.
type gifBlock struct {
	Start, End int
	// Label is the extension's label (0xF9 graphic control, 0xFE comment,
	// 0x01 plain text, 0xFF application), 0 for an image.
	Label byte
	// Frame is an image's bounds, as its descriptor places it.
	Frame image.Rectangle
}

// walkGIF returns where a GIF's header and global colour table end and its
// blocks up to the trailer (GIF89a §§17-27), checking only structure:
// every frame must lie within the logical screen (§20, as gif.DecodeAll
// checks; gif.Decode stops at the first frame and would not).
func walkGIF(data []byte) (int, []gifBlock, error) {
	const header = 6 + 7 // signature and version, logical screen descriptor
	if len(data) < header {
		return 0, nil, errTruncated
	}
	screenW, screenH := int(binary.LittleEndian.Uint16(data[6:])), int(binary.LittleEndian.Uint16(data[8:]))
	i := header
	if flags := data[10]; flags&0x80 != 0 {
		i += 3 << ((flags & 7) + 1) // global colour table
	}
	if i > len(data) {
		return 0, nil, errTruncated
	}
	headerEnd := i

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
	var blocks []gifBlock
	for {
		if i >= len(data) {
			return 0, nil, errTruncated
		}
		start := i
		switch data[i] {
		case 0x3B: // trailer
			return headerEnd, blocks, nil
		case 0x21: // extension: label, then sub-blocks
			if i+2 > len(data) {
				return 0, nil, errTruncated
			}
			end, err := subBlocks(i + 2)
			if err != nil {
				return 0, nil, err
			}
			blocks = append(blocks, gifBlock{Start: start, End: end, Label: data[i+1]})
			i = end
		case 0x2C: // image descriptor, optional local colour table, LZW data
			if i+10 > len(data) {
				return 0, nil, errTruncated
			}
			d := data[i+1:]
			x, y := int(binary.LittleEndian.Uint16(d)), int(binary.LittleEndian.Uint16(d[2:]))
			w, h := int(binary.LittleEndian.Uint16(d[4:])), int(binary.LittleEndian.Uint16(d[6:]))
			if x+w > screenW || y+h > screenH {
				return 0, nil, fmt.Errorf("gif: frame %d is %dx%d at (%d,%d), outside the %dx%d logical screen",
					countFrames(blocks)+1, w, h, x, y, screenW, screenH)
			}
			j := i + 10
			if flags := data[i+9]; flags&0x80 != 0 {
				j += 3 << ((flags & 7) + 1)
			}
			j++ // LZW minimum code size
			end, err := subBlocks(j)
			if err != nil {
				return 0, nil, err
			}
			blocks = append(blocks, gifBlock{Start: start, End: end, Frame: image.Rect(x, y, x+w, y+h)})
			i = end
		default:
			return 0, nil, fmt.Errorf("gif: unknown block %#x at byte %d", data[i], i)
		}
	}
}

func countFrames(blocks []gifBlock) int {
	n := 0
	for _, b := range blocks {
		if b.Label == 0 {
			n++
		}
	}
	return n
}

func stripGIF(data []byte) ([]byte, error) {
	headerEnd, blocks, err := walkGIF(data)
	if err != nil {
		return nil, err
	}
	animated := countFrames(blocks) > 1
	out := make([]byte, 0, len(data))
	out = append(out, data[:headerEnd]...)
	for _, b := range blocks {
		blk := data[b.Start:b.End]
		switch {
		case b.Label == 0, b.Label == 0xF9:
			// A graphic control extension stays even when the plain text
			// it was meant for goes: decoders (Go's, browsers') skip plain
			// text and apply it to the next image anyway.
			out = append(out, blk...)
		case b.Label == 0xFF && animated && bytes.HasPrefix(blk[2:], []byte("\x0bNETSCAPE2.0")):
			out = append(out, blk...)
		}
	}
	return append(out, 0x3B), nil
}
