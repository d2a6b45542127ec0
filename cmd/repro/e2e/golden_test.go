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

// goldenFile pins the digest of every example spec. A digest that changes
// is a bug until explained: either the output format changed (bump
// compress.FormatVersion) or an input did.
const goldenFile = "testdata/golden/examples.txt"

// goldenCase is one example built one way.
type goldenCase struct {
	example, compression string // example: a spec path under specs/examples
	// toolchain is "-" when the image holds nothing compiled; else "go":
	// the image holds the example Go server, whose bytes depend on the
	// toolchain that its lock pins (and that GOTOOLCHAIN fetches), not
	// on the go on PATH.
	toolchain string
}

var goldenCases = []goldenCase{
	{"static-site/repro.yaml", "gzip", "-"},
	{"static-site/repro.yaml", "zstd", "-"},
	{"go-server/repro.yaml", "gzip", "go"},
	{"go-server/repro.yaml", "zstd", "go"},
	{"go-server/multi-platform.yaml", "gzip", "go"},
	{"fleet/repro.yaml", "gzip", "-"},
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
		if len(f) != 4 {
			t.Fatalf("%s: bad line %q", goldenFile, line)
		}
		m[strings.Join(f[:3], " ")] = f[3]
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
		key := fmt.Sprintf("%s %s %s", c.example, c.compression, tc)
		t.Run(strings.ReplaceAll(key, " ", "/"), func(t *testing.T) {
			spec := filepath.Join(examples, c.example)
			out := "oci:" + filepath.Join(t.TempDir(), "out") + ":golden"
			r := repro(t, examples, "build", "-q", "--offline", "--version", "1.0.0", "--compression", c.compression, "-f", spec, "-o", out)
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
				t.Errorf("%s: digest %s, golden %s\nA changed digest is a bug until explained: if the output format changed on purpose, bump compress.FormatVersion and update the goldens (-update).", key, d, want)
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
	b.WriteString("# example compression toolchain digest; toolchain \"-\" = no compiled code in the image.\n")
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
