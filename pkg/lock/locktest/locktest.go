// Package locktest serves Debian-style repositories for tests: .debs
// generated in Go (ar, control.tar.gz, data.tar.gz), Packages indexes, and
// an InRelease clearsigned with a throwaway OpenPGP key, over httptest on
// 127.0.0.1. Nothing here reaches the network.
package locktest

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
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fixed is the time written into everything generated, so that a
// repository built twice is the same bytes.
var fixed = time.Unix(1600000000, 0)

// File is one member of a generated data.tar.
type File struct {
	Name     string // ./usr/bin/x
	Type     byte   // tar.TypeReg when zero
	Mode     int64  // 0644 (0755 for directories) when zero
	UID, GID int
	Body     string
	Link     string
}

// Deb describes a generated .deb.
type Deb struct {
	// Control is the control file, without Filename, Size or SHA256.
	Control  string
	Files    []File
	Scripts  []string // maintainer scripts to ship (postinst, ...)
	Triggers string
}

// Name returns the Package field of the control file.
func (d Deb) Name() string { return d.field("Package") }

func (d Deb) field(name string) string {
	for _, l := range strings.Split(d.Control, "\n") {
		if v, ok := strings.CutPrefix(l, name+": "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Bytes builds the .deb as dpkg-deb lays it out: an ar archive of
// debian-binary, control.tar.gz and data.tar.gz.
func (d Deb) Bytes(t testing.TB) []byte {
	t.Helper()
	var data bytes.Buffer
	dz := gzip.NewWriter(&data)
	tw := tar.NewWriter(dz)
	var sums strings.Builder
	for _, f := range d.Files {
		h := &tar.Header{Name: f.Name, Typeflag: f.Type, Mode: f.Mode, Uid: f.UID, Gid: f.GID, Linkname: f.Link, ModTime: fixed, Format: tar.FormatGNU}
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
			h.Size = int64(len(f.Body))
			m := md5.Sum([]byte(f.Body))
			fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(m[:]), strings.TrimPrefix(f.Name, "./"))
		}
		must(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := io.WriteString(tw, f.Body)
			must(t, err)
		}
	}
	must(t, tw.Close())
	must(t, dz.Close())
	var ctl bytes.Buffer
	cz := gzip.NewWriter(&ctl)
	cw := tar.NewWriter(cz)
	add := func(name, body string, mode int64) {
		must(t, cw.WriteHeader(&tar.Header{Name: "./" + name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(body)), ModTime: fixed}))
		_, err := io.WriteString(cw, body)
		must(t, err)
	}
	must(t, cw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: fixed}))
	add("control", strings.TrimLeft(d.Control, "\n"), 0o644)
	add("md5sums", sums.String(), 0o644)
	for _, s := range d.Scripts {
		add(s, "#!/bin/sh\nexit 0\n", 0o755)
	}
	if d.Triggers != "" {
		add("triggers", d.Triggers, 0o644)
	}
	must(t, cw.Close())
	must(t, cz.Close())
	var out bytes.Buffer
	out.WriteString("!<arch>\n")
	member := func(name string, body []byte) {
		fmt.Fprintf(&out, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, fixed.Unix(), 0, 0, "100644", len(body))
		out.Write(body)
		if len(body)%2 == 1 {
			out.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("control.tar.gz", ctl.Bytes())
	member("data.tar.gz", data.Bytes())
	return out.Bytes()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Key is a throwaway OpenPGP signing key.
type Key struct {
	entity *openpgp.Entity
	// Public is the armored public key, as a keyring file holds it.
	Public []byte
}

// NewKey makes an Ed25519 signing key.
func NewKey(t testing.TB, name string) *Key {
	t.Helper()
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return fixed }}
	e, err := openpgp.NewEntity(name, "", "test@repro.invalid", cfg)
	must(t, err)
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	must(t, err)
	must(t, e.Serialize(w))
	must(t, w.Close())
	return &Key{entity: e, Public: buf.Bytes()}
}

// Repo is a Debian-style repository in memory, served on 127.0.0.1.
type Repo struct {
	// URL is the repository's root.
	URL string

	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
	// pool holds the stanzas of the .debs added, by name and
	// architecture, for Publish.
	pool map[string]string
}

// NewRepo starts an empty repository.
func NewRepo(t testing.TB) *Repo {
	r := &Repo{files: map[string][]byte{}, hits: map[string]int{}, pool: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
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
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Put stores a file at p (no leading /).
func (r *Repo) Put(p string, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[p] = b
}

// Remove deletes the file at p: it answers 404 from then on, as a
// mirror's superseded .deb does.
func (r *Repo) Remove(p string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.files, p)
}

// Get returns the file at p.
func (r *Repo) Get(p string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files[p]
}

// Hits returns how many requests asked for p.
func (r *Repo) Hits(p string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits[p]
}

// Add builds each .deb, stores it in the pool (replacing an earlier
// version of the same package and architecture in the next Publish), and
// returns the pool path of the last.
func (r *Repo) Add(t testing.TB, debs ...Deb) string {
	t.Helper()
	var file string
	for _, d := range debs {
		b := d.Bytes(t)
		ver := strings.ReplaceAll(d.field("Version"), ":", "%3a")
		file = fmt.Sprintf("pool/main/%s_%s_%s.deb", d.Name(), ver, d.field("Architecture"))
		r.Put(file, b)
		sum := sha256.Sum256(b)
		r.mu.Lock()
		r.pool[d.Name()+" "+d.field("Architecture")] = strings.TrimRight(strings.TrimLeft(d.Control, "\n"), "\n") +
			fmt.Sprintf("\nFilename: %s\nSize: %d\nSHA256: %s\n", file, len(b), hex.EncodeToString(sum[:]))
		r.mu.Unlock()
	}
	return file
}

// Publish writes dists/<suite>/ for the .debs added so far, component
// main: for each of archs a Packages.gz index (its architecture's packages
// and those of architecture all), Release and an InRelease signed by key.
// date distinguishes one publication from the next.
func (r *Repo) Publish(t testing.TB, suite string, key *Key, date time.Time, archs ...string) {
	t.Helper()
	r.mu.Lock()
	names := make([]string, 0, len(r.pool))
	for n := range r.pool {
		names = append(names, n)
	}
	sort.Strings(names)
	stanzas := map[string][]string{}
	for _, n := range names {
		st := r.pool[n]
		for _, a := range archs {
			if strings.Contains(st, "\nArchitecture: "+a+"\n") || strings.Contains(st, "\nArchitecture: all\n") {
				stanzas[a] = append(stanzas[a], st)
			}
		}
	}
	r.mu.Unlock()
	var sums []string
	for _, a := range archs {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		io.WriteString(zw, strings.Join(stanzas[a], "\n"))
		must(t, zw.Close())
		rel := "main/binary-" + a + "/Packages.gz"
		sum := sha256.Sum256(z.Bytes())
		r.Put("dists/"+suite+"/"+rel, z.Bytes())
		sums = append(sums, fmt.Sprintf(" %s %d %s", hex.EncodeToString(sum[:]), z.Len(), rel))
	}
	release := fmt.Sprintf("Origin: test\nSuite: %s\nCodename: %s\nDate: %s\nArchitectures: %s\nComponents: main\nSHA256:\n%s\n",
		suite, suite, date.UTC().Format(time.RFC1123), strings.Join(archs, " "), strings.Join(sums, "\n"))
	r.Put("dists/"+suite+"/Release", []byte(release))
	var buf bytes.Buffer
	w, err := clearsign.Encode(&buf, key.entity.PrivateKey, &packet.Config{Time: func() time.Time { return fixed }})
	must(t, err)
	io.WriteString(w, release)
	must(t, w.Close())
	r.Put("dists/"+suite+"/InRelease", buf.Bytes())
}

// Layout writes a linux/amd64 OCI image into a new layout under dir and
// returns its base reference (oci:DIR@sha256:…). Each map is one layer:
// a path ending in / is a directory, a value "symlink:T" a symlink to T,
// anything else a regular file with that content.
func Layout(t testing.TB, dir string, layers ...map[string]string) string {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, files := range layers {
		var raw bytes.Buffer
		tw := tar.NewWriter(&raw)
		paths := make([]string, 0, len(files))
		for p := range files {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			body := files[p]
			h := &tar.Header{Name: strings.TrimPrefix(p, "/"), Mode: 0o644, ModTime: fixed, Typeflag: tar.TypeReg}
			switch {
			case strings.HasSuffix(p, "/"):
				h.Typeflag, h.Mode = tar.TypeDir, 0o755
			case strings.HasPrefix(body, "symlink:"):
				h.Typeflag, h.Mode, h.Linkname = tar.TypeSymlink, 0o777, strings.TrimPrefix(body, "symlink:")
			default:
				h.Size = int64(len(body))
			}
			must(t, tw.WriteHeader(h))
			if h.Typeflag == tar.TypeReg {
				_, err := io.WriteString(tw, body)
				must(t, err)
			}
		}
		must(t, tw.Close())
		b := raw.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, tarball.WithMediaType(types.OCILayer))
		must(t, err)
		img, err = mutate.AppendLayers(img, l)
		must(t, err)
	}
	cf, err := img.ConfigFile()
	must(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	must(t, err)
	p, err := layout.Write(dir, empty.Index)
	must(t, err)
	must(t, p.AppendImage(img))
	d, err := img.Digest()
	must(t, err)
	return "oci:" + dir + "@" + d.String()
}
