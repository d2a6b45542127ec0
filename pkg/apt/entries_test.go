package apt

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/layer"
)

// testDebs are three packages in the three compressions, laid out as
// bookworm packages are (/bin, /lib64 real directories), with hard links,
// relative symlinks that usrmerge moves, shared directories, setgid files
// with a group, a file taken over by Replaces, scripts and triggers.
func testDebs(t *testing.T) []debSpec {
	return []debSpec{
		{
			control: "Package: coreutils-ish\nVersion: 1:9.1-1\nArchitecture: amd64\nEssential: yes\nPre-Depends: libc-ish\nDescription: test\n two lines\n",
			comp:    ".xz",
			files: []tfile{
				{name: "./", typ: tar.TypeDir},
				{name: "./bin/", typ: tar.TypeDir},
				{name: "./bin/ls", mode: 0o755, body: "ls binary"},
				{name: "./bin/dir", typ: tar.TypeLink, link: "./bin/ls"},
				{name: "./bin/vdir", typ: tar.TypeSymlink, link: "ls"},
				{name: "./bin/share-tool", typ: tar.TypeSymlink, link: "../usr/share/coreutils/tool"},
				{name: "./sbin/", typ: tar.TypeDir},
				{name: "./sbin/chroot", typ: tar.TypeSymlink, link: "../bin/ls"},
				{name: "./usr/", typ: tar.TypeDir},
				{name: "./usr/share/", typ: tar.TypeDir},
				{name: "./usr/share/coreutils/", typ: tar.TypeDir},
				{name: "./usr/share/coreutils/tool", mode: 0o755, body: "#!/bin/sh\n"},
				{name: "./usr/share/doc/", typ: tar.TypeDir},
				{name: "./usr/share/doc/shared.txt", body: "old shared text"},
				{name: "./var/", typ: tar.TypeDir},
				{name: "./var/mail/", typ: tar.TypeDir, mode: 0o2775, gid: 8},
				{name: "./dev/null", typ: tar.TypeChar},
			},
			scripts: []string{"postinst", "prerm"},
		},
		{
			control:  "Package: libc-ish\nVersion: 2.36-9\nArchitecture: amd64\nMulti-Arch: same\n",
			comp:     ".zst",
			noMD5:    true,
			triggers: "# comment\nactivate-noawait ldconfig\n",
			files: []tfile{
				{name: "./lib64/", typ: tar.TypeDir},
				{name: "./lib64/ld-linux-x86-64.so.2", typ: tar.TypeSymlink, link: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
				{name: "./lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", mode: 0o755, body: "the loader"},
				{name: "./usr/", typ: tar.TypeDir},
				{name: "./usr/share/", typ: tar.TypeDir},
				{name: "./usr/share/doc/", typ: tar.TypeDir},
				{name: "./var/mail/", typ: tar.TypeDir, mode: 0o755},
			},
			scripts: []string{"postinst"},
		},
		{
			control: "Package: shared-ish\nVersion: 2\nArchitecture: all\nReplaces: coreutils-ish (<< 1:10)\n",
			comp:    ".gz",
			files: []tfile{
				{name: "./usr/share/doc/shared.txt", body: "new shared text"},
				{name: "./usr/bin/expiry", mode: 0o2755, gid: 42, body: "expiry"},
			},
			triggers: "interest-noawait /usr/share/doc\n",
		},
	}
}

func writeDebs(t *testing.T, specs []debSpec) []LocalDeb {
	dir := t.TempDir()
	var out []LocalDeb
	for i, s := range specs {
		p := filepath.Join(dir, fmt.Sprintf("%d.deb", i))
		must(t, os.WriteFile(p, makeDeb(t, s), 0o644))
		out = append(out, LocalDeb{Path: p})
	}
	return out
}

func TestEntriesGolden(t *testing.T) {
	debs := writeDebs(t, testDebs(t))
	ctx := context.Background()
	ents, rep, err := Entries(ctx, debs, EntriesOptions{UsrMerge: true, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := layer.WriteTar(ctx, &buf, ents, 1700000000); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	digest := hex.EncodeToString(sum[:])

	var out strings.Builder
	out.WriteString("# the layer's tar, as layer.WriteTar writes Entries' result (usrmerge on)\n")
	out.WriteString(listTar(t, buf.Bytes()))
	out.WriteString("\n# report\n")
	for _, l := range rep.Lines() {
		out.WriteString(l + "\n")
	}
	fmt.Fprintf(&out, "\n# files\n")
	for _, p := range []string{"/var/lib/dpkg/status.d/coreutils-ish", "/var/lib/dpkg/status.d/libc-ish.md5sums", "/var/lib/dpkg/status.d/coreutils-ish.md5sums", "/usr/share/doc/shared.txt"} {
		fmt.Fprintf(&out, "== %s\n%s\n", p, readEntry(t, ents, p))
	}
	fmt.Fprintf(&out, "\n# sha256 of the tar\n%s\n", digest)
	golden(t, "entries.golden", out.String())

	// The same again, in another order and another work directory.
	rev := []LocalDeb{debs[2], debs[0], debs[1]}
	ents2, _, err := Entries(ctx, rev, EntriesOptions{UsrMerge: true, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	h2 := sha256.New()
	must(t, layer.WriteTar(ctx, h2, ents2, 1700000000))
	if got := hex.EncodeToString(h2.Sum(nil)); got != digest {
		t.Errorf("another order of .debs gives %s, want %s", got, digest)
	}
}

func TestEntriesWithoutUsrMerge(t *testing.T) {
	ents, _, err := Entries(context.Background(), writeDebs(t, testDebs(t)), EntriesOptions{WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]layer.Entry{}
	for _, e := range ents {
		byPath[e.Path] = e
	}
	if e := byPath["/bin"]; e.Type != layer.Dir {
		t.Errorf("/bin is a %v", e.Type)
	}
	if e := byPath["/bin/share-tool"]; e.Target != "../usr/share/coreutils/tool" {
		t.Errorf("/bin/share-tool -> %s", e.Target)
	}
	if _, ok := byPath["/usr/bin/ls"]; ok {
		t.Error("/usr/bin/ls without usrmerge")
	}
	must(t, layer.WriteTar(context.Background(), io.Discard, ents, 0))
}

func TestEntriesConflicts(t *testing.T) {
	a := debSpec{control: "Package: a\nVersion: 1\nArchitecture: all\n", comp: ".gz", files: []tfile{{name: "./etc/x", body: "a"}, {name: "./usr/bin/tool", body: "a"}}}
	b := debSpec{control: "Package: b\nVersion: 1\nArchitecture: all\nReplaces: a (<< 1)\n", comp: ".gz", files: []tfile{{name: "./etc/x", body: "b"}}}
	c := debSpec{control: "Package: c\nVersion: 1\nArchitecture: all\n", comp: ".gz", files: []tfile{{name: "./etc/x/", typ: tar.TypeDir}}}
	d := debSpec{control: "Package: d\nVersion: 1\nArchitecture: all\n", comp: ".gz", files: []tfile{{name: "./bin/tool", body: "d"}}}
	e := debSpec{control: "Package: e\nVersion: 1\nArchitecture: all\n", comp: ".gz", files: []tfile{{name: "./bin/x", body: "1"}, {name: "./usr/bin/x", body: "2"}}}
	for _, tc := range []struct {
		name  string
		specs []debSpec
		merge bool
		want  string
	}{
		{"versioned Replaces that does not cover", []debSpec{a, b}, false, "/etc/x is shipped by a and b, and none of them Replaces the others"},
		{"dir against file", []debSpec{a, c}, false, "/etc/x is a directory in one package and not in another"},
		{"usrmerge aliasing across packages", []debSpec{a, d}, true, "/usr/bin/tool is shipped by a and d"},
		{"usrmerge aliasing in one package", []debSpec{e}, true, "ships /usr/bin/x twice"},
		{"a package given twice", []debSpec{c, c}, false, "package c is given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Entries(context.Background(), writeDebs(t, tc.specs), EntriesOptions{UsrMerge: tc.merge, WorkDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// Without usrmerge, /bin/tool and /usr/bin/tool are two paths.
	if _, _, err := Entries(context.Background(), writeDebs(t, []debSpec{a, d}), EntriesOptions{WorkDir: t.TempDir()}); err != nil {
		t.Error(err)
	}
}

func TestEntriesChecksPins(t *testing.T) {
	debs := writeDebs(t, testDebs(t)[:1])
	debs[0].Pin = Pin{Name: "coreutils-ish", Version: "9.1-1"}
	_, _, err := Entries(context.Background(), debs, EntriesOptions{WorkDir: t.TempDir()})
	if err == nil || fault.KindOf(err) != fault.Operational || !strings.Contains(err.Error(), "not the pinned coreutils-ish=9.1-1") {
		t.Fatalf("err = %v", err)
	}
}

func TestEntriesRejectsBrokenDebs(t *testing.T) {
	good := makeDeb(t, testDebs(t)[2])
	for _, tc := range []struct {
		name string
		deb  []byte
		want string
	}{
		{"not ar", []byte("PK\x03\x04 zip file"), "not an ar archive"},
		{"truncated", good[:len(good)-40], "unexpected EOF"},
		{"bad header", append([]byte(arMagic), []byte(strings.Repeat("x", 60))...), "bad header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.deb")
			must(t, os.WriteFile(p, tc.deb, 0o644))
			_, _, err := Entries(context.Background(), []LocalDeb{{Path: p}}, EntriesOptions{WorkDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestInstalledFrom(t *testing.T) {
	status := "Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\n\n" +
		"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n\n" +
		"Package: mawk\nStatus: install ok installed\nVersion: 1.3.4\nArchitecture: amd64\nProvides: awk\n"
	got, err := InstalledFrom(map[string]io.Reader{
		"/var/lib/dpkg/status":                      strings.NewReader(status),
		"/var/lib/dpkg/status.d/base-files":         strings.NewReader("Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n"),
		"/var/lib/dpkg/status.d/base-files.md5sums": strings.NewReader("not a stanza"),
		"/etc/passwd":                               strings.NewReader("root:x:0:0::/root:/bin/sh"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := names(got); s != "base-files=12.4+deb12u5 mawk=1.3.4" {
		t.Errorf("installed: %s", s)
	}
	idx := universe(t)
	res, err := idx.Resolve([]string{"mawk", "init-system-helpers"}, got, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := names(res); s != "init-system-helpers=1.65.2 perl-base=5.36.0-7" {
		t.Errorf("resolved over the base: %s", s)
	}
}

// listTar describes each entry of a tar, one line each.
func listTar(t testing.TB, b []byte) string {
	var out strings.Builder
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out.String()
		}
		must(t, err)
		fmt.Fprintf(&out, "%c %04o %d:%d %6d %s", h.Typeflag, h.Mode, h.Uid, h.Gid, h.Size, h.Name)
		if h.Linkname != "" {
			fmt.Fprintf(&out, " -> %s", h.Linkname)
		}
		out.WriteString("\n")
	}
}
