package apt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/reprobuild/repro/pkg/layer"
)

func entryAt(ents []layer.Entry, p string) *layer.Entry {
	for i := range ents {
		if ents[i].Path == p {
			return &ents[i]
		}
	}
	return nil
}

func wantLink(t *testing.T, ents []layer.Entry, p, target string) {
	t.Helper()
	e := entryAt(ents, p)
	if e == nil || e.Type != layer.Symlink || e.Target != target {
		t.Errorf("%s: %+v; want a symlink to %s", p, e, target)
	}
}

func actionsOf(rep *Report, pkg string) map[string]Action {
	m := map[string]Action{}
	for _, a := range rep.Actions {
		if a.Package == pkg {
			m[a.What] = a
		}
	}
	return m
}

func TestParseAlternatives(t *testing.T) {
	script := `#!/bin/sh
set -e
if [ "$1" = configure ]; then
    update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \
      --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \
      --slave /usr/bin/nawk nawk /usr/bin/mawk
    update-alternatives --quiet --install "$BINPATH"/w w /usr/bin/w.procps 50
    update-alternatives --install /usr/bin/lzma lzma /usr/bin/xz 20 $(slaves)
fi
# update-alternatives --install /x x /y 1
`
	alts, dynamic := parseAlternatives([]byte(script))
	if len(alts) != 1 || alts[0].link != "/usr/bin/awk" || alts[0].name != "awk" || alts[0].path != "/usr/bin/mawk" || alts[0].priority != 5 || len(alts[0].slaves) != 2 {
		t.Errorf("alternatives %+v", alts)
	}
	if strings.Join(dynamic, ",") != "w,lzma" {
		t.Errorf("dynamic %q", dynamic)
	}
}

func TestDeclarativeAlternatives(t *testing.T) {
	debs := writeDebs(t, []debSpec{
		{control: "Package: mawk\nVersion: 1\nArchitecture: amd64\n", files: []tfile{{name: "./usr/bin/mawk", mode: 0o755, body: "mawk"}},
			postinst: "update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 --slave /usr/bin/nawk nawk /usr/bin/mawk\n"},
		{control: "Package: gawk\nVersion: 1\nArchitecture: amd64\n", files: []tfile{{name: "./usr/bin/gawk", mode: 0o755, body: "gawk"}},
			postinst: "update-alternatives --install /usr/bin/awk awk /usr/bin/gawk 10 --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/gawk.1.gz\n"},
		{control: "Package: nano\nVersion: 1\nArchitecture: amd64\n", files: []tfile{{name: "./bin/nano", mode: 0o755, body: "nano"}},
			postinst: "update-alternatives --install /usr/bin/editor editor /bin/nano 40\nupdate-alternatives --install /usr/bin/pico pico /bin/gone 10\n"},
	})
	ents, rep, err := Entries(context.Background(), debs, EntriesOptions{UsrMerge: true, WorkDir: t.TempDir()})
	must(t, err)
	// The highest priority wins; the slave of gawk whose file is missing is left out.
	wantLink(t, ents, "/usr/bin/awk", "/etc/alternatives/awk")
	wantLink(t, ents, "/etc/alternatives/awk", "/usr/bin/gawk")
	if entryAt(ents, "/usr/share/man/man1/awk.1.gz") != nil || entryAt(ents, "/usr/bin/nawk") != nil {
		t.Error("a slave whose path is missing, or of the losing alternative, was linked")
	}
	wantLink(t, ents, "/usr/bin/editor", "/etc/alternatives/editor")
	wantLink(t, ents, "/etc/alternatives/editor", "/bin/nano")
	if a := actionsOf(rep, "mawk")["update-alternatives awk"]; a.Status != ActionDone || !strings.Contains(a.How, "lost to /usr/bin/gawk") {
		t.Errorf("mawk's action %+v", a)
	}
	if a := actionsOf(rep, "nano")["update-alternatives pico"]; a.Status != ActionReported {
		t.Errorf("pico's action %+v", a)
	}
	// The record for the SBOM.
	rec := entryAt(ents, MaintScriptsDir+"/gawk.json")
	if rec == nil {
		t.Fatal("no record for gawk")
	}
	rc, _ := rec.Open()
	var acts []Action
	must(t, json.NewDecoder(rc).Decode(&acts))
	rc.Close()
	if len(acts) != 1 || acts[0].Status != ActionDone || acts[0].What != "update-alternatives awk" {
		t.Errorf("record %+v", acts)
	}
}

func TestDeclarativeBaseFiles(t *testing.T) {
	debs := writeDebs(t, []debSpec{
		{control: "Package: base-files\nVersion: 12.4\nArchitecture: amd64\n", postinst: "migrate_directory /var/run /run\nchown root:utmp x\nmkdir y\nln -s a b\n", files: []tfile{
			{name: "./var/", typ: '5'}, {name: "./var/run/", typ: '5'}, {name: "./var/lock/", typ: '5', mode: 0o1777}, {name: "./run/", typ: '5'},
			{name: "./etc/dpkg/origins/debian", body: "Vendor: Debian\n"},
			{name: "./usr/share/base-files/dot.profile", body: "# ~/.profile\n"},
		}},
		{control: "Package: daemon\nVersion: 1\nArchitecture: amd64\n", files: []tfile{{name: "./var/run/daemon/", typ: '5'}, {name: "./var/run/daemon/x", body: "x"}}},
	})
	ents, rep, err := Entries(context.Background(), debs, EntriesOptions{UsrMerge: true, WorkDir: t.TempDir()})
	must(t, err)
	wantLink(t, ents, "/var/run", "/run")
	wantLink(t, ents, "/var/lock", "/run/lock")
	wantLink(t, ents, "/etc/dpkg/origins/default", "debian")
	if e := entryAt(ents, "/run/daemon/x"); e == nil || e.Type != layer.Regular {
		t.Errorf("/var/run/daemon/x did not move to /run: %+v", e)
	}
	if e := entryAt(ents, "/run/lock"); e == nil || e.Mode != 0o1777 {
		t.Errorf("/run/lock %+v", e)
	}
	if e := entryAt(ents, "/root/.profile"); e == nil || e.Size != int64(len("# ~/.profile\n")) {
		t.Errorf("/root/.profile %+v", e)
	}
	if e := entryAt(ents, "/var/log/wtmp"); e == nil || e.GID != gidUtmp || e.Mode != 0o664 {
		t.Errorf("/var/log/wtmp %+v", e)
	}
	acts := actionsOf(rep, "base-files")
	if acts["first configure"].Status != ActionDone || len(acts) != 1 {
		t.Errorf("base-files actions %+v (chown, mkdir and ln are its own work, done)", acts)
	}
}

func TestDeclarativeCACertificates(t *testing.T) {
	var certs []string
	for _, cn := range []string{"Test  Root CA", "Other (R2), CA"} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"Repro Test"}},
			NotBefore: time.Unix(1600000000, 0), NotAfter: time.Unix(1900000000, 0), IsCA: true, BasicConstraintsValid: true}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		must(t, err)
		certs = append(certs, strings.TrimSuffix(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), "\n"))
	}
	debs := writeDebs(t, []debSpec{{control: "Package: ca-certificates\nVersion: 20230311\nArchitecture: all\n", postinst: "update-ca-certificates\ndb_get x\n", files: []tfile{
		{name: "./usr/share/ca-certificates/mozilla/Test_Root_CA.crt", body: certs[0]},
		{name: "./usr/share/ca-certificates/mozilla/Other (R2), CA.crt", body: certs[1] + "\n"},
		{name: "./etc/ssl/certs/", typ: '5'},
	}}})
	ents, rep, err := Entries(context.Background(), debs, EntriesOptions{UsrMerge: true, WorkDir: t.TempDir()})
	must(t, err)
	read := func(p string) string {
		e := entryAt(ents, p)
		if e == nil {
			t.Fatalf("no %s", p)
		}
		return readEntry(t, ents, p)
	}
	conf := read("/etc/ca-certificates.conf")
	if !strings.HasSuffix(conf, "\nmozilla/Other (R2), CA.crt\nmozilla/Test_Root_CA.crt\n") {
		t.Errorf("ca-certificates.conf:\n%s", conf)
	}
	if got, want := read("/etc/ssl/certs/ca-certificates.crt"), certs[1]+"\n"+certs[0]+"\n"; got != want {
		t.Errorf("bundle:\n%s\nwant\n%s", got, want)
	}
	wantLink(t, ents, "/etc/ssl/certs/Other_=R2=__CA.pem", "/usr/share/ca-certificates/mozilla/Other (R2), CA.crt")
	wantLink(t, ents, "/etc/ssl/certs/Test_Root_CA.pem", "/usr/share/ca-certificates/mozilla/Test_Root_CA.crt")
	h, _, err := subjectHash([]byte(certs[0]))
	must(t, err)
	wantLink(t, ents, "/etc/ssl/certs/"+h+".0", "Test_Root_CA.pem")
	if a := actionsOf(rep, "ca-certificates"); a["update-ca-certificates"].Status != ActionDone || len(a) != 1 {
		t.Errorf("actions %+v", a)
	}
}

func TestDeclarativeTzdata(t *testing.T) {
	spec := []debSpec{{control: "Package: tzdata\nVersion: 2024a\nArchitecture: all\n", postinst: "ln -sf /usr/share/zoneinfo/$AREA/$ZONE /etc/localtime.dpkg-new\n", files: []tfile{
		{name: "./usr/share/zoneinfo/Europe/Berlin", body: "TZif"},
	}}}
	ents, rep, err := Entries(context.Background(), writeDebs(t, spec), EntriesOptions{UsrMerge: true, WorkDir: t.TempDir(), Timezone: "Europe/Berlin"})
	must(t, err)
	wantLink(t, ents, "/etc/localtime", "/usr/share/zoneinfo/Europe/Berlin")
	if readEntry(t, ents, "/etc/timezone") != "Europe/Berlin\n" {
		t.Error("/etc/timezone")
	}
	if a := actionsOf(rep, "tzdata")["/etc/localtime"]; a.Status != ActionDone {
		t.Errorf("action %+v", a)
	}
	ents, rep, err = Entries(context.Background(), writeDebs(t, spec), EntriesOptions{UsrMerge: true, WorkDir: t.TempDir()})
	must(t, err)
	if entryAt(ents, "/etc/localtime") != nil {
		t.Error("/etc/localtime without apt.timezone")
	}
	if a := actionsOf(rep, "tzdata")["/etc/localtime"]; a.Status != ActionReported || !strings.Contains(a.How, "apt.timezone") {
		t.Errorf("action %+v", a)
	}
	_, rep, err = Entries(context.Background(), writeDebs(t, spec), EntriesOptions{UsrMerge: true, WorkDir: t.TempDir(), Timezone: "Mars/Olympus"})
	must(t, err)
	if a := actionsOf(rep, "tzdata")["/etc/localtime"]; a.Status != ActionReported || !strings.Contains(a.How, "no /usr/share/zoneinfo/Mars/Olympus") {
		t.Errorf("action %+v", a)
	}
}
