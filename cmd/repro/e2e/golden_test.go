package e2e

import (
	"bufio"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/verify"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/examples.txt with the digests built now")

// goldenFile pins the digest of every example spec in every output
// format. A digest that changes is a bug until explained: a released
// format never changes (a change of bytes is a new format, compress.Format),
// so a moved pin means an input changed. The format-1 pins are the digests
// that releases before format 2 printed, and stay so.
const goldenFile = "testdata/golden/examples.txt"

// goldenCase is one example built one way.
type goldenCase struct {
	example, compression string // example: a spec path under specs/examples
	format               string // the output format, --format
	// toolchain is "-" when the image holds nothing compiled; else "go":
	// the image holds the example Go server, whose bytes depend on the
	// toolchain that its lock pins (and that GOTOOLCHAIN fetches), not
	// on the go on PATH.
	toolchain string
}

var goldenCases = []goldenCase{
	{"static-site/repro.yaml", "gzip", "1", "-"},
	{"static-site/repro.yaml", "zstd", "1", "-"},
	{"go-server/repro.yaml", "gzip", "1", "go"},
	{"go-server/repro.yaml", "zstd", "1", "go"},
	{"go-server/multi-platform.yaml", "gzip", "1", "go"},
	{"fleet/repro.yaml", "gzip", "1", "-"},
	// Format 2, the default: built without --format.
	{"static-site/repro.yaml", "gzip", "2", "-"},
	{"static-site/repro.yaml", "zstd", "2", "-"},
	{"go-server/repro.yaml", "gzip", "2", "go"},
	{"go-server/repro.yaml", "zstd", "2", "go"},
	{"go-server/multi-platform.yaml", "gzip", "2", "go"},
	{"fleet/repro.yaml", "gzip", "2", "-"},
}

// copyExamples copies specs/examples to a fresh directory outside any git
// repository (so .GitCommit is "unknown") and returns it. Beside it, in
// go-server-oracle/, it compiles the example server for amd64 and arm64
// with a plain go build of the flags the go: entry promises (the pinned
// toolchain, CGO_ENABLED=0, -trimpath, -buildvcs=false, an empty build
// ID, the spec's -X): the image must hold those bytes exactly.
func copyExamples(t *testing.T, perturb bool) string {
	t.Helper()
	root := moduleRoot(t)
	dst := filepath.Join(t.TempDir(), "examples")
	copyTree(t, filepath.Join(root, "specs", "examples"), dst, perturb)
	for _, arch := range []string{"amd64", "arm64"} {
		out := filepath.Join(dst, exampleServerOracle(arch))
		cmd := exec.Command("go", "build", "-trimpath", "-mod=readonly", "-buildvcs=false", "-ldflags=-buildid= -X main.version="+e2eVersion, "-o", out, ".")
		cmd.Dir = filepath.Join(root, "specs", "examples", "go-server")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=", "GOTOOLCHAIN="+exampleToolchain(t))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the example server for %s: %v\n%s", arch, err, b)
		}
	}
	return dst
}

// exampleServerOracle is where copyExamples puts the example server it
// compiled for arch, relative to the examples copy (outside it).
func exampleServerOracle(arch string) string {
	return filepath.Join("..", "go-server-oracle", "server-"+arch)
}

// exampleToolchain is the Go toolchain specs/examples/go-server's lock
// pins, which its go: entries compile with whatever go is on PATH.
func exampleToolchain(t testing.TB) string {
	t.Helper()
	lf, err := lock.Read(filepath.Join(moduleRoot(t), "specs", "examples", "go-server", lock.FileName))
	if err != nil || lf == nil || lf.Go == "" {
		t.Fatalf("specs/examples/go-server/%s pins no Go toolchain (%v); run repro lock -f specs/examples/go-server/repro.yaml", lock.FileName, err)
	}
	return lf.Go
}

func goVersion(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func readGolden(t *testing.T) map[string]string {
	f, err := os.Open(filepath.Join(moduleRoot(t), goldenFile))
	if os.IsNotExist(err) && *update {
		return map[string]string{}
	}
	if err != nil {
		t.Fatalf("reading goldens: %v (run go test ./cmd/repro/e2e -run TestGolden -update)", err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 5 {
			t.Fatalf("%s: bad line %q", goldenFile, line)
		}
		m[strings.Join(f[:4], " ")] = f[4]
	}
	return m
}

func TestGoldenDigests(t *testing.T) {
	gover := exampleToolchain(t)
	examples := copyExamples(t, false)
	golden := readGolden(t)
	got := map[string]string{}
	for _, c := range goldenCases {
		tc := c.toolchain
		if tc == "go" {
			tc = gover
		}
		key := fmt.Sprintf("%s %s %s %s", c.example, c.format, c.compression, tc)
		t.Run(strings.ReplaceAll(key, " ", "/"), func(t *testing.T) {
			spec := filepath.Join(examples, c.example)
			out := "oci:" + filepath.Join(t.TempDir(), "out") + ":golden"
			args := []string{"build", "-q", "--offline", "--version", "1.0.0", "--compression", c.compression, "-f", spec, "-o", out}
			if c.format != "2" {
				args = append(args, "--format", c.format)
			}
			r := repro(t, examples, args...)
			d := lastLine(r.stdout)
			got[key] = d
			want, ok := golden[key]
			switch {
			case *update:
			case !ok && c.toolchain == "go":
				t.Fatalf("no golden digest for %s built with %s; this example compiles a Go binary, whose bytes depend on the toolchain its lock pins: a new pin needs a new golden, added with -update (got %s)", c.example, tc, d)
			case !ok:
				t.Fatalf("no golden digest for %q (got %s); add it with -update", key, d)
			case d != want:
				t.Errorf("%s: digest %s, golden %s\nA changed digest is a bug until explained: a released format never changes; a change of bytes on purpose is a new format (compress.Format), with its own pins (-update).", key, d, want)
			}
		})
	}
	if *update {
		for k, v := range golden {
			if _, ok := got[k]; !ok {
				got[k] = v // keep pins of other toolchains
			}
		}
		writeGolden(t, got)
	}
}

func writeGolden(t *testing.T, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Golden digests of specs/examples, built by TestGoldenDigests (cmd/repro/e2e).\n")
	b.WriteString("# example format compression toolchain digest; toolchain \"-\" = no compiled code in the image.\n")
	b.WriteString("# The format-1 pins are what releases before format 2 printed; a released format's pins never move.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s\n", k, m[k])
	}
	if err := os.WriteFile(filepath.Join(moduleRoot(t), goldenFile), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies src to dst. With perturb, it makes verify.PerturbedCopy,
// the copy build --check makes: the way a different machine might hold
// it, files created in reverse order, with other modes (group and other
// bits cleared, as umask 077 would), other mtimes and atimes, another
// owner (when run as root) and an extended attribute.
func copyTree(t *testing.T, src, dst string, perturb bool) {
	t.Helper()
	if perturb {
		if err := verify.PerturbedCopy(src, dst, nil); err != nil {
			t.Fatal(err)
		}
		return
	}
	err := filepath.Walk(src, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(target, 0o755)
		case fi.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, fi.Mode().Perm())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVerifyFormat1: an image that a release before format 2 published
// (its digest is the format-1 golden pin of static-site, which that
// release printed) verifies with --format 1; without it, the rebuild is
// format 2 and says so by not verifying. A build with --format 1 prints
// the same old digest, and its history names repro-layer/1.
func TestVerifyFormat1(t *testing.T) {
	examples := copyExamples(t, false)
	golden := readGolden(t)
	old, ok := golden["static-site/repro.yaml 1 gzip -"]
	if !ok {
		t.Fatal("no format-1 golden pin for static-site")
	}
	spec := filepath.Join(examples, "static-site", "repro.yaml")
	common := []string{"--offline", "--version", "1.0.0", "-f", spec}
	r := repro(t, examples, append([]string{"verify", "--format", "1", "--expect", old}, common...)...)
	if !strings.HasPrefix(r.stdout, "verified:") {
		t.Errorf("verify --format 1: %s", r.stdout)
	}
	r = invocation{dir: examples}.run(t, append([]string{"verify", "--expect", old}, common...)...)
	if r.code != 1 {
		t.Errorf("verify of the format-1 digest as format 2: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	out := filepath.Join(t.TempDir(), "out")
	r = repro(t, examples, append([]string{"build", "-q", "--format", "1", "-o", "oci:" + out + ":v1"}, common...)...)
	if d := lastLine(r.stdout); d != old {
		t.Errorf("build --format 1: %s, golden %s", d, old)
	}
	// --against reads the format from the image's history.
	r = repro(t, examples, append([]string{"verify", "--against", "oci:" + out + ":v1"}, common...)...)
	if !strings.HasPrefix(r.stdout, "verified:") {
		t.Errorf("verify --against a format-1 image without --format: %s", r.stdout)
	}
	r = invocation{dir: examples}.run(t, append([]string{"build", "--format", "3"}, common...)...)
	if r.code != 2 || !strings.Contains(r.stderr, "--format") {
		t.Errorf("--format 3: exit %d\n%s", r.code, r.stderr)
	}
}
