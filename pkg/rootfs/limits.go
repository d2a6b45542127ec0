package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/reprobuild/repro/pkg/fault"
)

// The limits on what one layer may make a reader do. A hostile layer can be
// small on the wire and vast once read: a gzip bomb expands a few megabytes
// into tens of gigabytes, and a PAX or GNU sparse entry of 4 KiB can claim a
// terabyte of holes, which the tar reader hands out as zeros to be hashed.
// Both are bounded here, as they are read, never by trusting a size a header
// claims.
const (
	// DefaultMaxLayerSize bounds the uncompressed tar stream of one layer.
	// The largest layers seen in real images (CUDA, ML toolchains) are
	// 10-20 GiB uncompressed; 64 GiB leaves room and still stops a bomb
	// within about a minute of hashing on one core.
	DefaultMaxLayerSize int64 = 64 << 30
	// DefaultMaxHoles bounds the bytes one layer's sparse entries claim
	// beyond the data they carry. Image builders do not write sparse
	// entries; the rare real one (a lastlog) has holes of megabytes.
	DefaultMaxHoles int64 = 1 << 30
)

// MaxLayerSize and MaxHoles are the limits in force; the command line sets
// MaxLayerSize from --max-layer-size.
var (
	MaxLayerSize = DefaultMaxLayerSize
	MaxHoles     = DefaultMaxHoles
)

// ErrLayerTooLarge is in the error of a layer that expands past
// MaxLayerSize; the command line adds how to raise the limit.
var ErrLayerTooLarge = errors.New("a layer this large is refused as a likely gzip bomb")

// checkEvery is how many bytes pass between cancellation checks.
const checkEvery = 1 << 20

// stream counts the uncompressed bytes of a layer as the tar reader takes
// them, stops at MaxLayerSize, and checks ctx as it goes, so a layer that
// expands without end is cut off and SIGINT reaches inside an entry.
type stream struct {
	ctx   context.Context
	r     io.Reader
	n     int64 // bytes read from r
	check int64 // n at the last ctx check
	max   int64
}

func (s *stream) Read(p []byte) (int, error) {
	if s.n-s.check >= checkEvery || s.n == 0 {
		s.check = s.n
		if err := s.ctx.Err(); err != nil {
			return 0, err
		}
	}
	if s.n >= s.max {
		return 0, fault.Bad(fmt.Errorf("the layer expands past %s uncompressed: %w", size(s.max), ErrLayerTooLarge))
	}
	if rest := s.max - s.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := s.r.Read(p)
	s.n += n64(n)
	return n, err
}

// content is one entry's content as the tar reader hands it out. The bytes
// it yields beyond those the stream gave the tar reader are holes; the
// layer's holes together may not pass MaxHoles.
type content struct {
	ctx   context.Context
	r     io.Reader
	s     *stream
	start int64  // s.n when the entry began
	out   int64  // bytes yielded
	holes *int64 // the layer's holes before this entry
	check int64
}

func (c *content) Read(p []byte) (int, error) {
	if c.out-c.check >= checkEvery {
		c.check = c.out
		if err := c.ctx.Err(); err != nil {
			return 0, err
		}
		if h := *c.holes + c.out - (c.s.n - c.start); h > MaxHoles {
			return 0, fault.Bad(fmt.Errorf("its sparse entries claim over %s of holes beyond the data they hold; such an entry is refused rather than read as zeros", size(MaxHoles)))
		}
	}
	if len(p) > checkEvery {
		p = p[:checkEvery]
	}
	n, err := c.r.Read(p)
	c.out += n64(n)
	return n, err
}

// done adds this entry's holes to the layer's count.
func (c *content) done() {
	if h := c.out - (c.s.n - c.start); h > 0 {
		*c.holes += h
	}
}

func n64(n int) int64 { return int64(n) }

func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
