package apt

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/ulikunitz/xz"

	"github.com/reprobuild/repro/pkg/compress"
)

// debControl is what a .deb's control.tar holds that repro uses.
type debControl struct {
	pkg      *Package
	control  []byte // the control file, as shipped
	md5sums  []byte // nil when the package ships none
	scripts  []string
	triggers []byte
	// postinst is the postinst script's text, which Entries reads for
	// what it would have done; nil when there is none.
	postinst []byte
}

// maintainerScripts are the control.tar members that dpkg would run.
var maintainerScripts = map[string]bool{"preinst": true, "postinst": true, "prerm": true, "postrm": true, "config": true}

// maxControlMember bounds a control.tar member read into memory.
const maxControlMember = 64 << 20

// openDeb reads a .deb's debian-binary and control.tar, and returns its
// control data and the decompressed data.tar stream, positioned at its
// start. The caller closes the returned closer (the file).
func openDeb(file string) (*debControl, io.Reader, io.Closer, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, nil, err
	}
	ctl, data, err := readDeb(bufio.NewReaderSize(f, 256<<10))
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	return ctl, data, f, nil
}

func readDeb(r io.Reader) (*debControl, io.Reader, error) {
	ar, err := newArReader(r)
	if err != nil {
		return nil, nil, err
	}
	h, err := ar.Next()
	if err != nil {
		return nil, nil, fmt.Errorf("reading debian-binary: %w", err)
	}
	if h.Name != "debian-binary" {
		return nil, nil, fmt.Errorf("first member is %q, not debian-binary", h.Name)
	}
	vers, err := io.ReadAll(io.LimitReader(ar, 64))
	if err != nil {
		return nil, nil, err
	}
	if !bytes.HasPrefix(vers, []byte("2.")) {
		return nil, nil, fmt.Errorf("format version %q is not 2.x", strings.TrimSpace(string(vers)))
	}
	var ctl *debControl
	for {
		h, err := ar.Next()
		if err == io.EOF {
			return nil, nil, errors.New("no data.tar member")
		}
		if err != nil {
			return nil, nil, err
		}
		switch {
		case strings.HasPrefix(h.Name, "_"):
			continue // members starting with _ are for tools, and ignored
		case strings.HasPrefix(h.Name, "control.tar"):
			z, err := decompressor(ar, strings.TrimPrefix(h.Name, "control.tar"))
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", h.Name, err)
			}
			ctl, err = readControlTar(z)
			z.Close()
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", h.Name, err)
			}
		case strings.HasPrefix(h.Name, "data.tar"):
			if ctl == nil {
				return nil, nil, errors.New("data.tar comes before control.tar")
			}
			z, err := decompressor(ar, strings.TrimPrefix(h.Name, "data.tar"))
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", h.Name, err)
			}
			return ctl, z, nil
		default:
			return nil, nil, fmt.Errorf("unknown member %q", h.Name)
		}
	}
}

// decompressor returns a reader of r decompressed by the extension of a
// member name.
func decompressor(r io.Reader, ext string) (io.ReadCloser, error) {
	switch ext {
	case "":
		return io.NopCloser(r), nil
	case ".gz":
		return gzip.NewReader(r)
	case ".xz":
		x, err := xz.NewReader(r)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(x), nil
	case ".zst":
		return compress.NewReader(r, compress.Zstd)
	case ".bz2":
		return io.NopCloser(bzip2.NewReader(r)), nil
	}
	return nil, fmt.Errorf("unsupported compression %q", ext)
}

func readControlTar(r io.Reader) (*debControl, error) {
	ctl := &debControl{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		read := func() ([]byte, error) {
			if h.Size > maxControlMember {
				return nil, fmt.Errorf("%s is larger than %d bytes", name, maxControlMember)
			}
			return io.ReadAll(tr)
		}
		switch {
		case name == "control":
			if ctl.control, err = read(); err != nil {
				return nil, err
			}
		case name == "md5sums":
			if ctl.md5sums, err = read(); err != nil {
				return nil, err
			}
		case name == "triggers":
			if ctl.triggers, err = read(); err != nil {
				return nil, err
			}
		case maintainerScripts[name]:
			ctl.scripts = append(ctl.scripts, name)
			if name == "postinst" {
				if ctl.postinst, err = read(); err != nil {
					return nil, err
				}
			}
		}
	}
	if ctl.control == nil {
		return nil, errors.New("no control file")
	}
	pkgs, err := ParseStanzas(bytes.NewReader(ctl.control))
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if len(pkgs) != 1 {
		return nil, fmt.Errorf("control holds %d stanzas, not one", len(pkgs))
	}
	ctl.pkg = pkgs[0]
	return ctl, nil
}
