package apt

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ulikunitz/xz"

	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/layer"
)

// tfile is one member of a generated data.tar.
type tfile struct {
	name     string // ./usr/bin/x
	typ      byte   // tar.TypeReg when zero
	mode     int64
	uid, gid int
	body     string
	link     string
}

// debSpec describes a generated .deb.
type debSpec struct {
	control  string // the control file, without Filename, Size or SHA256
	files    []tfile
	comp     string // "", ".gz", ".xz", ".zst"
	scripts  []string
	triggers string
	noMD5    bool   // ship no md5sums
	postinst string // the postinst's text (scripts gives a stub otherwise)
}

// makeDeb builds a .deb the way dpkg-deb lays it out: an ar archive of
// debian-binary, control.tar.gz and data.tar<comp>.
func makeDeb(t testing.TB, s debSpec) []byte {
	t.Helper()
	// data.tar
	var data bytes.Buffer
	tw := tar.NewWriter(&data)
	var sums strings.Builder
	for _, f := range s.files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Uid: f.uid, Gid: f.gid, Linkname: f.link, ModTime: time.Unix(1600000000, 0), Format: tar.FormatGNU}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(f.body))
			m := md5.Sum([]byte(f.body))
			fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(m[:]), strings.TrimPrefix(f.name, "./"))
		}
		must(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := io.WriteString(tw, f.body)
			must(t, err)
		}
	}
	must(t, tw.Close())
	var zdata bytes.Buffer
	switch s.comp {
	case "":
		zdata = data
	case ".gz":
		zw := gzip.NewWriter(&zdata)
		_, err := zw.Write(data.Bytes())
		must(t, err)
		must(t, zw.Close())
	case ".xz":
		zw, err := xz.NewWriter(&zdata)
		must(t, err)
		_, err = zw.Write(data.Bytes())
		must(t, err)
		must(t, zw.Close())
	case ".zst":
		zw, err := compress.NewWriter(&zdata, compress.Zstd)
		must(t, err)
		_, err = zw.Write(data.Bytes())
		must(t, err)
		must(t, zw.Close())
	default:
		t.Fatalf("compression %q", s.comp)
	}
	// control.tar.gz
	var ctl bytes.Buffer
	zw := gzip.NewWriter(&ctl)
	cw := tar.NewWriter(zw)
	addCtl := func(name, body string, mode int64) {
		must(t, cw.WriteHeader(&tar.Header{Name: "./" + name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(body)), ModTime: time.Unix(1600000000, 0)}))
		_, err := io.WriteString(cw, body)
		must(t, err)
	}
	must(t, cw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}))
	addCtl("control", strings.TrimLeft(s.control, "\n"), 0o644)
	if !s.noMD5 {
		addCtl("md5sums", sums.String(), 0o644)
	}
	for _, sc := range s.scripts {
		addCtl(sc, "#!/bin/sh\nexit 0\n", 0o755)
	}
	if s.postinst != "" {
		addCtl("postinst", s.postinst, 0o755)
	}
	if s.triggers != "" {
		addCtl("triggers", s.triggers, 0o644)
	}
	must(t, cw.Close())
	must(t, zw.Close())
	// ar
	var out bytes.Buffer
	out.WriteString(arMagic)
	member := func(name string, body []byte) {
		fmt.Fprintf(&out, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, 1600000000, 0, 0, "100644", len(body))
		out.Write(body)
		if len(body)%2 == 1 {
			out.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("control.tar.gz", ctl.Bytes())
	member("data.tar"+s.comp, zdata.Bytes())
	return out.Bytes()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testKey is an Ed25519 OpenPGP key made for the tests.
type testKey struct {
	entity *openpgp.Entity
	public []byte // armored
}

var (
	keyOnce sync.Once
	keys    [2]*testKey
)

// signingKeys returns two distinct test keys, made once per test binary.
func signingKeys(t testing.TB) (*testKey, *testKey) {
	t.Helper()
	keyOnce.Do(func() {
		for i := range keys {
			cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return time.Unix(1600000000, 0) }}
			e, err := openpgp.NewEntity(fmt.Sprintf("repro test %d", i), "", "test@example.invalid", cfg)
			if err != nil {
				panic(err)
			}
			var buf bytes.Buffer
			w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
			if err != nil {
				panic(err)
			}
			if err := e.Serialize(w); err != nil {
				panic(err)
			}
			w.Close()
			keys[i] = &testKey{entity: e, public: buf.Bytes()}
		}
	})
	return keys[0], keys[1]
}

// clearsignText signs text as gpg --clearsign does.
func clearsignText(t testing.TB, k *testKey, text string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := clearsign.Encode(&buf, k.entity.PrivateKey, &packet.Config{Time: func() time.Time { return time.Unix(1600000000, 0) }})
	must(t, err)
	_, err = io.WriteString(w, text)
	must(t, err)
	must(t, w.Close())
	return buf.Bytes()
}

// repo is a Debian-style repository in memory, served over HTTP.
type repo struct {
	mu    sync.Mutex
	files map[string][]byte // path without leading / -> content
	hits  map[string]int
	srv   *httptest.Server
}

func newRepo(t testing.TB) *repo {
	r := &repo{files: map[string][]byte{}, hits: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		p := strings.TrimPrefix(req.URL.Path, "/")
		r.hits[p]++
		b, ok := r.files[p]
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *repo) put(p string, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[p] = b
}

func (r *repo) get(p string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files[p]
}

func (r *repo) totalHits() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.hits {
		n += c
	}
	return n
}

// addDeb stores a .deb in the pool and returns its Packages stanza.
func (r *repo) addDeb(t testing.TB, s debSpec) string {
	t.Helper()
	deb := makeDeb(t, s)
	pkgs, err := ParseStanzas(strings.NewReader(s.control))
	must(t, err)
	p := pkgs[0]
	file := fmt.Sprintf("pool/main/%s_%s_%s.deb", p.Name, strings.ReplaceAll(p.Version, ":", "%3a"), p.Architecture)
	r.put(file, deb)
	sum := sha256.Sum256(deb)
	return strings.TrimRight(strings.TrimLeft(s.control, "\n"), "\n") +
		fmt.Sprintf("\nFilename: %s\nSize: %d\nSHA256: %s\n", file, len(deb), hex.EncodeToString(sum[:]))
}

// suiteSpec is one suite to publish.
type suiteSpec struct {
	name       string
	arch       string
	components map[string][]string // component -> Packages stanzas
	comp       string              // index compression: ".xz", ".gz" or ""
	byHash     bool
	signers    []*testKey // none: no InRelease
	// releaseComponents, when set, is what the Release's Components
	// field says (updates/main in a security suite), whatever the paths.
	releaseComponents []string
	// extra is more Release fields (NotAutomatic: yes).
	extra string
}

// publish writes dists/<suite>/: the Packages indexes, Release, InRelease.
func (r *repo) publish(t testing.TB, s suiteSpec) {
	t.Helper()
	var sums []string
	comps := make([]string, 0, len(s.components))
	for c := range s.components {
		comps = append(comps, c)
	}
	sort.Strings(comps)
	for _, c := range comps {
		text := strings.Join(s.components[c], "\n")
		var z bytes.Buffer
		switch s.comp {
		case ".xz":
			zw, err := xz.NewWriter(&z)
			must(t, err)
			io.WriteString(zw, text)
			must(t, zw.Close())
		case ".gz":
			zw := gzip.NewWriter(&z)
			io.WriteString(zw, text)
			must(t, zw.Close())
		default:
			z.WriteString(text)
		}
		rel := c + "/binary-" + s.arch + "/Packages" + s.comp
		sum := sha256.Sum256(z.Bytes())
		hexSum := hex.EncodeToString(sum[:])
		sums = append(sums, fmt.Sprintf(" %s %d %s", hexSum, z.Len(), rel))
		if s.byHash {
			r.put("dists/"+s.name+"/"+c+"/binary-"+s.arch+"/by-hash/SHA256/"+hexSum, z.Bytes())
		} else {
			r.put("dists/"+s.name+"/"+rel, z.Bytes())
		}
	}
	relComps := comps
	if s.releaseComponents != nil {
		relComps = s.releaseComponents
	}
	release := fmt.Sprintf("Origin: test\nSuite: %s\nCodename: %s\nDate: Sun, 13 Sep 2020 12:26:40 UTC\nArchitectures: %s\nComponents: %s\n%s",
		s.name, s.name, s.arch, strings.Join(relComps, " "), s.extra)
	if s.byHash {
		release += "Acquire-By-Hash: yes\n"
	}
	release += "SHA256:\n" + strings.Join(sums, "\n") + "\n"
	r.put("dists/"+s.name+"/Release", []byte(release))
	if len(s.signers) == 0 {
		return
	}
	var signed []byte
	if len(s.signers) == 1 {
		signed = clearsignText(t, s.signers[0], release)
	} else {
		var buf bytes.Buffer
		var privs []*packet.PrivateKey
		for _, k := range s.signers {
			privs = append(privs, k.entity.PrivateKey)
		}
		w, err := clearsign.EncodeMulti(&buf, privs, &packet.Config{Time: func() time.Time { return time.Unix(1600000000, 0) }})
		must(t, err)
		io.WriteString(w, release)
		must(t, w.Close())
		signed = buf.Bytes()
	}
	r.put("dists/"+s.name+"/InRelease", signed)
}

// readEntry returns the content of the regular entry at p.
func readEntry(t testing.TB, ents []layer.Entry, p string) string {
	t.Helper()
	for _, e := range ents {
		if e.Path == p {
			if e.Type != layer.Regular {
				t.Fatalf("%s is a %s", p, e.Type)
			}
			rc, err := e.Open()
			must(t, err)
			defer rc.Close()
			b, err := io.ReadAll(rc)
			must(t, err)
			if int64(len(b)) != e.Size {
				t.Fatalf("%s: read %d bytes, size says %d", p, len(b), e.Size)
			}
			return string(b)
		}
	}
	t.Fatalf("no entry %s", p)
	return ""
}
