package layout

import (
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

type cutReader struct{ n int }

func (r *cutReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

// TestCopyVerifiedSaysWhichSideFailed: a source cut short is "reading"
// the blob, named, with how far it got; a full disk is "writing" it, and
// the cause stays in the chain (errors.Is ENOSPC).
func TestCopyVerifiedSaysWhichSideFailed(t *testing.T) {
	d := digest.FromString("blob")
	err := copyVerified(io.Discard, &cutReader{n: 3}, d, 4)
	if err == nil || !strings.Contains(err.Error(), "reading blob "+d.String()+" (3 of 4 bytes read)") || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a cut source: %v", err)
	}
	err = copyVerified(failWriter{syscall.ENOSPC}, strings.NewReader("blob"), d, 4)
	if err == nil || !strings.Contains(err.Error(), "writing blob "+d.String()+" into the layout") || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("a full disk: %v", err)
	}
}
