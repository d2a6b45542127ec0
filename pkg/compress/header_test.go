package compress_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/bits"
	"testing"

	"github.com/reprobuild/repro/pkg/compress"
)

// compressed is in compressed with a in format f.
func compressed(t *testing.T, a compress.Algorithm, f compress.Format, in []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := compress.NewTeeWriter(&out, a, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	for p := in; len(p) > 0; {
		n := min(len(p), 4096+len(p)%7919)
		if _, err := zw.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// headerSizes are input sizes that reach every branch of the headers:
// nothing, a few bytes, sizes around zstd's content-size field widths,
// and more than one gzip block and one zstd frame.
var headerSizes = []int{0, 1, 255, 256, 65791, 65792, 1 << 20, compress.ZstdChunk, compress.ZstdChunk + 5000}

// TestGzipHeaderBytes reads every byte of the gzip member header of every
// format (RFC 1952 2.3): ID1 ID2 CM FLG, MTIME, XFL, OS, and that nothing
// optional follows (no FEXTRA, FNAME, FCOMMENT or FHCRC), whatever the
// input.
func TestGzipHeaderBytes(t *testing.T) {
	want := map[compress.Format]string{
		// 1f 8b: the gzip magic; 08: deflate; 00: FLG, nothing optional;
		// 00096e88: MTIME 0x886E0900 (little-endian), pgzip's value for
		// the zero time; 00: XFL; ff: OS unknown.
		compress.Format1: "1f8b0800" + "00096e88" + "00" + "ff",
		// Format 2: MTIME zero ("no time stamp"); the rest as format 1.
		compress.Format2: "1f8b0800" + "00000000" + "00" + "ff",
	}
	for _, f := range compress.Formats {
		for _, size := range headerSizes {
			out := compressed(t, compress.Gzip, f, testInput(size))
			if got := hex.EncodeToString(out[:10]); got != want[f] {
				t.Errorf("%s, %d bytes: gzip header %s, want %s", f, size, got, want[f])
			}
			zr, err := gzip.NewReader(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			zr.Multistream(false)
			if zr.Name != "" || zr.Comment != "" || zr.Extra != nil || zr.OS != 255 {
				t.Errorf("%s, %d bytes: header %+v", f, size, zr.Header)
			}
			back, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(back, testInput(size)) {
				t.Errorf("%s, %d bytes: round trip: %v", f, size, err)
			}
			// One member, ending with CRC32 and ISIZE: nothing after it.
			if _, err := zr.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("%s, %d bytes: more after the member: %v", f, size, err)
			}
			tail := out[len(out)-8:]
			if got := binary.LittleEndian.Uint32(tail[4:]); got != uint32(size) {
				t.Errorf("%s, %d bytes: ISIZE %d", f, size, got)
			}
		}
	}
	if got := hex.EncodeToString(compressed(t, compress.Gzip, compress.Format2, []byte("x"))[:8]); got != "1f8b080000000000" {
		t.Errorf("format 2: a gzip layer's first eight bytes are %s, want 1f8b080000000000", got)
	}
}

// zstdFrame is one parsed zstd frame header (RFC 8878 3.1.1).
type zstdFrame struct {
	fhd           byte
	singleSegment bool
	checksum      bool
	dictIDFlag    int
	window        uint64 // from the window descriptor; 0 with single segment
	contentSize   uint64
	hasSize       bool
	length        int // the whole frame, blocks and checksum included
}

// parseZstdFrame reads the frame at the start of b.
func parseZstdFrame(b []byte) (zstdFrame, error) {
	var f zstdFrame
	if len(b) < 6 || !bytes.Equal(b[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		return f, fmt.Errorf("no zstd magic at % x", b[:min(len(b), 4)])
	}
	f.fhd = b[4]
	fcsFlag := int(f.fhd >> 6)
	f.singleSegment = f.fhd&(1<<5) != 0
	if f.fhd&(1<<3) != 0 {
		return f, fmt.Errorf("reserved bit set in FHD %#x", f.fhd)
	}
	f.checksum = f.fhd&(1<<2) != 0
	f.dictIDFlag = int(f.fhd & 3)
	p := 5
	if !f.singleSegment {
		wd := b[p]
		exp, mant := uint64(wd>>3), uint64(wd&7)
		base := uint64(1) << (10 + exp)
		f.window = base + base/8*mant
		p++
	}
	p += [...]int{0, 1, 2, 4}[f.dictIDFlag]
	fcsLen := [...]int{0, 2, 4, 8}[fcsFlag]
	if fcsFlag == 0 && f.singleSegment {
		fcsLen = 1
	}
	switch fcsLen {
	case 1:
		f.contentSize, f.hasSize = uint64(b[p]), true
	case 2:
		f.contentSize, f.hasSize = uint64(binary.LittleEndian.Uint16(b[p:]))+256, true
	case 4:
		f.contentSize, f.hasSize = uint64(binary.LittleEndian.Uint32(b[p:])), true
	case 8:
		f.contentSize, f.hasSize = binary.LittleEndian.Uint64(b[p:]), true
	}
	p += fcsLen
	for {
		if p+3 > len(b) {
			return f, fmt.Errorf("frame cut short")
		}
		h := uint32(b[p]) | uint32(b[p+1])<<8 | uint32(b[p+2])<<16
		last, typ, size := h&1 != 0, (h>>1)&3, int(h>>3)
		p += 3
		switch typ {
		case 0, 2: // raw, compressed
			p += size
		case 1: // RLE
			p++
		default:
			return f, fmt.Errorf("reserved block type")
		}
		if last {
			break
		}
	}
	if f.checksum {
		p += 4
	}
	f.length = p
	return f, nil
}

// TestZstdFrameHeaders reads every field of every frame header of every
// format: the magic, the frame header descriptor (content-size field
// width, single segment off, no dictionary, checksum on), the window
// descriptor, the content size, and that the frames tile the stream, one
// per ZstdChunk of input, the last shorter.
func TestZstdFrameHeaders(t *testing.T) {
	for _, f := range compress.Formats {
		// The empty stream is one empty frame: single segment, content
		// size 0, no checksum (klauspost's WithZeroFrames), one empty raw
		// last block.
		if got := hex.EncodeToString(compressed(t, compress.Zstd, f, nil)); got != "28b52ffd"+"20"+"00"+"010000" {
			t.Errorf("%s: empty zstd stream %s", f, got)
		}
		for _, size := range headerSizes[1:] {
			in := testInput(size)
			out := compressed(t, compress.Zstd, f, in)
			rest, left := out, size
			for frames := 0; len(rest) > 0; frames++ {
				fr, err := parseZstdFrame(rest)
				if err != nil {
					t.Fatalf("%s, %d bytes, frame %d: %v", f, size, frames, err)
				}
				n := min(left, compress.ZstdChunk)
				// The window: the smallest power of two above the
				// frame's content (at least 1 KiB), at most ZstdWindow.
				wantWindow := uint64(compress.ZstdWindow)
				if n < compress.ZstdWindow {
					wantWindow = max(uint64(1)<<bits.Len(uint(n)), 1024)
				}
				wantFCS := byte(0)
				switch {
				case n >= 0xffffffff:
					wantFCS = 3
				case n >= 65536+256:
					wantFCS = 2
				case n >= 256:
					wantFCS = 1
				}
				// FHD: FCS flag (2 bits), single segment 0, unused 0,
				// reserved 0, checksum 1, dictionary ID flag 0.
				wantFHD := wantFCS<<6 | 1<<2
				switch {
				case fr.fhd != wantFHD:
					t.Errorf("%s, %d bytes, frame %d: FHD %#x, want %#x", f, size, frames, fr.fhd, wantFHD)
				case fr.window != wantWindow:
					t.Errorf("%s, %d bytes, frame %d: window %d, want %d", f, size, frames, fr.window, wantWindow)
				case n >= 256 && (!fr.hasSize || fr.contentSize != uint64(n)):
					t.Errorf("%s, %d bytes, frame %d: content size %d (given %v), want %d", f, size, frames, fr.contentSize, fr.hasSize, n)
				case n < 256 && fr.hasSize:
					// Below 256 bytes, without single segment, the
					// format has no content-size field.
					t.Errorf("%s, %d bytes, frame %d: a content size for %d bytes", f, size, frames, n)
				}
				rest, left = rest[fr.length:], left-n
			}
			if left != 0 {
				t.Errorf("%s, %d bytes: the frames hold %d bytes too few", f, size, left)
			}
		}
	}
}

// TestGoldenStreams pins every byte that each format writes with each
// algorithm, for a fixed input of two zstd frames and five gzip blocks:
// the encoder code (pgzip v1.3.0, klauspost/compress v1.20.4) as well as
// its settings. A changed digest here is a changed format: keep the old
// encoder for the old formats (the Format doc says how), never update a
// pin of a released format.
func TestGoldenStreams(t *testing.T) {
	in := testInput(compress.ZstdChunk + 1<<20 + 12345)
	want := map[string]string{
		// Format 1's pins are what repro wrote before formats were
		// chosen (checked against the encoder of commit e62ece3).
		"repro-layer/1 gzip": "33638bb148917357886c59c7541d1524d2564e67f0d6d21b3613d04d3588e27e",
		"repro-layer/1 zstd": "7a8f26d303ac21135b6af21abc044769393ccf580f5d7d0aeb26433e8a041e65",
		// Format 2: the gzip header's MTIME is zero; zstd is unchanged.
		"repro-layer/2 gzip": "1cb2a5a33c78a8b4f819083c7a56d2ae8e4049cebc8e47f2abfce964dd97a073",
		"repro-layer/2 zstd": "7a8f26d303ac21135b6af21abc044769393ccf580f5d7d0aeb26433e8a041e65",
	}
	for _, f := range compress.Formats {
		for _, a := range []compress.Algorithm{compress.Gzip, compress.Zstd} {
			key := fmt.Sprintf("%s %s", f, a)
			got := fmt.Sprintf("%x", sha256.Sum256(compressed(t, a, f, in)))
			if got != want[key] {
				t.Errorf("%s: sha256 %s, pinned %s", key, got, want[key])
			}
		}
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]compress.Format{"1": compress.Format1, "2": compress.Format2, "repro-layer/1": compress.Format1, "repro-layer/2": compress.Format2} {
		if got, err := compress.ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"0", "3", "", "repro-layer/", "v2", "-1"} {
		if _, err := compress.ParseFormat(bad); err == nil {
			t.Errorf("ParseFormat(%q) took it", bad)
		}
	}
	if compress.Formats[0] != compress.Newest {
		t.Errorf("Formats starts with %s, not the newest", compress.Formats[0])
	}
}
