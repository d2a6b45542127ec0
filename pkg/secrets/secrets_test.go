package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func scanFile(g *Guard, image string, data []byte) {
	s := g.File("test", image)
	// Write in odd-sized pieces, as a layer writer would.
	for len(data) > 0 {
		n := min(len(data), 4093)
		s.Write(data[:n])
		data = data[n:]
	}
	s.Done()
}

func corpus(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestCorpus: every true positive is found, by its own rule alone, and
// nothing in the clean set is.
func TestCorpus(t *testing.T) {
	pos := corpus(t, filepath.Join("..", "..", "testdata", "secrets", "positive"))
	if len(pos) < 15 {
		t.Fatalf("positive corpus has %d files", len(pos))
	}
	covered := map[string]bool{}
	for rel, data := range pos {
		rule, rest, _ := strings.Cut(rel, "/")
		g := NewGuard(nil)
		scanFile(g, "/"+rest, data)
		var rules []string
		for _, f := range g.Blocking() {
			rules = append(rules, f.Rule)
			if strings.Contains(f.Excerpt, string(data[min(len(data), 40):min(len(data), 80)])) && len(data) > 80 {
				t.Errorf("%s: excerpt %q is not redacted", rel, f.Excerpt)
			}
		}
		if len(rules) == 0 || rules[0] != rule || len(uniq(rules)) != 1 {
			t.Errorf("%s: found %v, want only %s", rel, rules, rule)
		}
		covered[rule] = true
		// Whole, as the layer writer calls it for files it read ahead,
		// finds the same.
		w := NewGuard(nil)
		w.File("test", "/"+rest).Whole(data)
		if !reflect.DeepEqual(w.Findings(), g.Findings()) {
			t.Errorf("%s: Whole found %v, Write and Done %v", rel, w.Findings(), g.Findings())
		}
	}
	for _, r := range Rules {
		if r != "env-secret" && !covered[r] {
			t.Errorf("rule %s has no true positive in the corpus", r)
		}
	}
	clean := corpus(t, filepath.Join("..", "..", "testdata", "secrets", "clean"))
	for rel, data := range clean {
		g := NewGuard(nil)
		scanFile(g, "/"+rel, data)
		if f := g.Findings(); len(f) > 0 {
			t.Errorf("clean %s: false alarm %v", rel, f)
		}
	}
	t.Logf("corpus: %d true positives over %d rules, %d clean files", len(pos), len(covered), len(clean))
}

func uniq(s []string) []string {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	var out []string
	for x := range m {
		out = append(out, x)
	}
	sort.Strings(out)
	return out
}

// TestGoBinaryIsClean compiles a Go program that links crypto/x509 and
// crypto/tls (whose binaries hold "PRIVATE KEY" strings) and scans it.
func TestGoBinaryIsClean(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a Go binary")
	}
	bin := filepath.Join(t.TempDir(), "server")
	// go-server is a module of its own, so it is built from its directory.
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = "../../specs/examples/go-server"
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	g := NewGuard(nil)
	scanFile(g, "/app/server", data)
	if f := g.Findings(); len(f) > 0 {
		t.Errorf("Go binary: false alarm %v", f)
	}
}

func TestEnvAndConfig(t *testing.T) {
	g := NewGuard(nil)
	g.Config(map[string]string{
		"DB_PASSWORD":    "Zq8#rT2!vLp9@xW4mK",
		"API_TOKEN":      "${API_TOKEN}",
		"SECRET_KEY":     "changeme",
		"PATH":           "/usr/local/bin:/usr/bin",
		"PASSWORD_FILE":  "/run/secrets/db",
		"GITHUB_TOKEN_X": "x",
		"DB_PASS":        "hunter2",
		"PASSWORD_MIN":   "12",
		"TOKEN_URL":      "https://auth.example.com/token",
		"API_KEY_HEADER": "X-Api-Key",
		"SECRET_MASKED":  "********",
		"USE_TOKEN":      "true",
	}, map[string]string{"config.labels.note": "see docs", "annotations.token": token()})
	var got []string
	for _, f := range g.Blocking() {
		got = append(got, f.Path+" "+f.Rule)
	}
	want := []string{"annotations.token github-token", "config.env.DB_PASS env-secret", "config.env.DB_PASSWORD env-secret", "config.env.SECRET_KEY env-secret"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", got, want)
	}
}

// token is a well-formed GitHub token with a valid checksum, made here so
// the test file itself holds none.
func token() string {
	b, _ := os.ReadFile(filepath.Join("..", "..", "testdata", "secrets", "positive", "github-token", "deploy.sh"))
	m := githubRE.Find(b)
	return string(m)
}

func TestAllow(t *testing.T) {
	key, err := os.ReadFile(filepath.Join("..", "..", "testdata", "secrets", "positive", "private-key", "rsa.pem"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(key)
	sha := hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name    string
		allow   Allow
		path    string
		allowed bool
	}{
		{"exact path", Allow{Path: "/etc/ssl/private/test.key", Field: "secrets.allow[0]"}, "/etc/ssl/private/test.key", true},
		{"glob", Allow{Path: "/usr/local/go/src/**", Rule: "private-key", Field: "secrets.allow[0]"}, "/usr/local/go/src/crypto/tls/testdata/k.pem", true},
		{"glob other rule", Allow{Path: "/usr/local/go/src/**", Rule: "github-token", Field: "secrets.allow[0]"}, "/usr/local/go/src/k.pem", false},
		{"sha256 match", Allow{Path: "/k.pem", SHA256: sha, Field: "secrets.allow[0]"}, "/k.pem", true},
		{"sha256 other file", Allow{Path: "/k.pem", SHA256: strings.Repeat("0", 64), Field: "secrets.allow[0]"}, "/k.pem", false},
		{"other path", Allow{Path: "/etc/**", Field: "secrets.allow[0]"}, "/srv/k.pem", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGuard([]Allow{tc.allow})
			s := g.File("app", tc.path)
			s.Write(key)
			s.Done()
			f := g.Findings()
			if len(f) != 1 || (f[0].AllowedBy != "") != tc.allowed {
				t.Errorf("findings %+v, allowed want %v", f, tc.allowed)
			}
		})
	}
}

// TestLargeFileWindows finds a key past the first window of a big file.
func TestLargeFileWindows(t *testing.T) {
	key, _ := os.ReadFile(filepath.Join("..", "..", "testdata", "secrets", "positive", "private-key", "ec.key"))
	g := NewGuard(nil)
	s := g.File("app", "/big.bin")
	filler := []byte(strings.Repeat("x", 1<<20))
	for i := 0; i < 20; i++ {
		s.Write(filler)
	}
	s.Write(key)
	s.Write(filler)
	s.Done()
	if f := g.Blocking(); len(f) != 1 || f[0].Rule != "private-key" {
		t.Errorf("findings %v", f)
	}
	whole := append(append(bytes.Repeat(filler, 20), key...), filler...)
	w := NewGuard(nil)
	w.File("app", "/big.bin").Whole(whole)
	if !reflect.DeepEqual(w.Findings(), g.Findings()) {
		t.Errorf("Whole found %v, Write and Done %v", w.Findings(), g.Findings())
	}
}
