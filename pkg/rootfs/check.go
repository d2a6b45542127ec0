package rootfs

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/pkg/fault"
)

// CheckTar reads r, one layer's uncompressed tar stream, to its end within
// the limits of this package (MaxLayerSize, MaxHoles, ctx checked inside
// entries), parsing every header and reading every entry's content, and
// returns its diff ID: the SHA-256 of every byte r gave, the padding after
// the end-of-archive blocks included. A header that does not parse, or a
// stream cut short, is bad input. Nothing is held in memory but the tar
// reader's buffers.
func CheckTar(ctx context.Context, r io.Reader) (v1.Hash, error) {
	h := sha256.New()
	s := &stream{ctx: ctx, r: io.TeeReader(r, h), max: MaxLayerSize}
	tr := tar.NewReader(s)
	var holes int64
	for {
		if err := ctx.Err(); err != nil {
			return v1.Hash{}, err
		}
		_, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return v1.Hash{}, badStream(err)
		}
		c := &content{ctx: ctx, r: tr, s: s, start: s.n, holes: &holes}
		_, err = io.Copy(io.Discard, c)
		c.done()
		if err != nil {
			return v1.Hash{}, badStream(err)
		}
	}
	if _, err := io.Copy(io.Discard, s); err != nil {
		return v1.Hash{}, badStream(err)
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

// badStream is badTar, and a stream that ends early is bad input too.
func badStream(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) && fault.KindOf(err) != fault.BadInput {
		return fault.Bad(err)
	}
	return badTar(err)
}
