package e2e

// End-to-end tests of failures: bad specs, fetched files that do not match
// their pin, the offline cache, and interrupted builds. A failed build must
// leave no output and no temporary files behind.

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// e2eNothingLeft fails unless dir (which held nothing before the build) is
// empty or absent: no output, no temporary file or directory.
func e2eNothingLeft(t *testing.T, what, dir string) {
	t.Helper()
	if names := e2eEntries(t, dir); len(names) > 0 {
		t.Errorf("%s: %s holds %q after the failed build; want nothing", what, dir, names)
	}
}

var e2eSpecErrorRE = regexp.MustCompile(`repro\.yaml:(\d+):(\d+): ([^ :]+): `)

// TestE2EBadSpec: a spec with an error exits 2, names file:line:col and the
// field on stderr, prints no digest and writes nothing.
func TestE2EBadSpec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, spec string
		line       int    // where the error is
		field      string // the field it names
	}{
		{"mode-not-octal", `version: 1
name: bad
layers:
  - name: a
    contents:
      - path: /x
        content: "x"
        mode: "0o99"
`, 8, "layers[0].contents[0].mode"},
		{"unknown-key", `version: 1
name: bad
layers:
  - name: a
    contents:
      - path: /x
        content: "x"
        colour: red
`, 8, "layers[0].contents[0].colour"},
		{"broken-unused-template", `version: 1
name: bad
layers:
  - name: a
    contents:
      - path: /x
        content: "x"
config:
  labels:
    a: "{{.Name"
`, 10, "config.labels.a"},
		{"source-leaves-context", `version: 1
name: bad
layers:
  - name: a
    contents:
      - path: /x
        source: ../../etc/passwd
`, 7, "layers[0].contents[0].source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "ctx")
			outDir := filepath.Join(t.TempDir(), "out")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "repro.yaml"), []byte(tc.spec), 0o644); err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			r := invocation{dir: dir, env: []string{"TMPDIR=" + tmp}}.run(t, "build", "-f", "repro.yaml", "-o", "oci:"+filepath.Join(outDir, "img")+":t")
			if r.code != 2 {
				t.Fatalf("exit %d, want 2 (bad input)\nstderr: %s", r.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			// The first FILE:LINE:COL: FIELD: in the message, wherever
			// the line holding it starts.
			m := e2eSpecErrorRE.FindStringSubmatch(r.stderr)
			if m == nil {
				t.Fatalf("stderr names no repro.yaml:LINE:COL: FIELD:\n%s", r.stderr)
			}
			line, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			lineText := strings.Split(tc.spec, "\n")[tc.line-1]
			if line != tc.line || col < 1 || col > len(lineText) || m[3] != tc.field {
				t.Errorf("the error points at line %d column %d, field %s; want line %d (%q), a column in it, field %s\n%s",
					line, col, m[3], tc.line, lineText, tc.field, r.stderr)
			}
			e2eNothingLeft(t, "output directory", outDir)
			e2eNothingLeft(t, "TMPDIR", tmp)
		})
	}
}

// TestE2EBadOutputWritesNothing: an output that cannot hold the image (a
// docker-archive for an index of two platforms) is bad usage, exit 2. It
// must be refused before anything is written; today the oci: output named
// before it is written first and left behind.
func TestE2EBadOutputWritesNothing(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ctx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := "version: 1\nname: two\nplatforms: [linux/amd64, linux/arm64]\nlayers:\n  - name: a\n    contents:\n      - path: /etc/motd\n        content: \"hi\\n\"\n"
	if err := os.WriteFile(filepath.Join(dir, "repro.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	outDir, tmp := filepath.Join(t.TempDir(), "out"), t.TempDir()
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := invocation{dir: dir, env: []string{"TMPDIR=" + tmp}}.run(t, "build", "-q",
		"-o", "oci:"+filepath.Join(outDir, "layout")+":t", "-o", "docker-archive:"+filepath.Join(outDir, "image.tar"))
	if r.code != 2 {
		t.Fatalf("exit %d, want 2 (bad usage: a docker-archive holds one platform)\nstderr: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "--platform") {
		t.Errorf("stderr does not suggest --platform:\n%s", r.stderr)
	}
	e2eNothingLeft(t, "the outputs' directory", outDir)
	e2eNothingLeft(t, "TMPDIR", tmp)
}

// e2eServer serves body at /file and counts the requests.
func e2eServer(t *testing.T, body string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/file" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// e2eURLSpec writes a spec with one layer holding url at /etc/fetched.txt,
// pinned to sha256Hex, and returns its directory.
func e2eURLSpec(t *testing.T, url, sha256Hex string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ctx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf(`version: 1
name: fetch
epoch: %d
layers:
  - name: fetched
    contents:
      - path: /etc/fetched.txt
        url: %s
        sha256: %s
`, e2eEpoch, url, sha256Hex)
	if err := os.WriteFile(filepath.Join(dir, "repro.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func e2eSHA256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// e2eCacheFiles lists the files in a cache directory.
func e2eCacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if os.IsNotExist(err) {
			return nil
		}
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestE2EURL drives `url` contents through an HTTP server of the test's own.
func TestE2EURL(t *testing.T) {
	t.Parallel()
	const body = "fetched by repro\n"

	// The server sends other bytes than the spec pins: exit 3, nothing
	// written, nothing cached.
	t.Run("sha256-mismatch", func(t *testing.T) {
		t.Parallel()
		srv, hits := e2eServer(t, "not what was pinned\n")
		url := srv.URL + "/file"
		dir := e2eURLSpec(t, url, e2eSHA256Hex(body))
		outDir, cache, tmp := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "cache"), t.TempDir()
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(outDir, "out")
		r := invocation{dir: dir, env: []string{"TMPDIR=" + tmp}}.run(t, "build", "--cache-dir", cache, "-o", "oci:"+out+":t", "-o", "oci-archive:"+out+".tar")
		if r.code != 3 {
			t.Fatalf("exit %d, want 3 (a fetched file that does not match its pin)\nstderr: %s", r.code, r.stderr)
		}
		if hits.Load() != 1 {
			t.Errorf("%d requests, want 1", hits.Load())
		}
		for _, want := range []string{url, e2eSHA256Hex(body), e2eSHA256Hex("not what was pinned\n")} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not name %s:\n%s", want, r.stderr)
			}
		}
		if _, err := os.Lstat(out); !os.IsNotExist(err) {
			t.Errorf("the output %s exists after the failed build (%v)", out, err)
		}
		e2eNothingLeft(t, "the output's directory", outDir)
		e2eNothingLeft(t, "TMPDIR", tmp)
		// The layer cache's stat records (layers/stat) describe context files,
		// not fetched ones; nothing fetched may stay.
		var fetched []string
		for _, f := range e2eCacheFiles(t, cache) {
			if !strings.HasPrefix(f, "layers/stat/") {
				fetched = append(fetched, f)
			}
		}
		if len(fetched) > 0 {
			t.Errorf("the cache holds %q after a mismatch; want nothing", fetched)
		}
	})

	// --offline with the file not cached: exit 3, and the message says how
	// to get it cached.
	t.Run("offline-uncached", func(t *testing.T) {
		t.Parallel()
		srv, hits := e2eServer(t, body)
		dir := e2eURLSpec(t, srv.URL+"/file", e2eSHA256Hex(body))
		outDir, tmp := filepath.Join(t.TempDir(), "out"), t.TempDir()
		r := invocation{dir: dir, env: []string{"TMPDIR=" + tmp}}.run(t, "build", "--offline", "--cache-dir", filepath.Join(t.TempDir(), "cache"), "-o", "oci:"+filepath.Join(outDir, "out")+":t")
		if r.code != 3 {
			t.Fatalf("exit %d, want 3\nstderr: %s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "without --offline") {
			t.Errorf("stderr does not say to run without --offline:\n%s", r.stderr)
		}
		if hits.Load() != 0 {
			t.Errorf("--offline made %d requests", hits.Load())
		}
		e2eNothingLeft(t, "the output's directory", outDir)
		e2eNothingLeft(t, "TMPDIR", tmp)
	})

	// An error is said once. The url error today repeats its whole
	// message: "FILE:L:C: FIELD: MSG: MSG" (pkg/build wraps the cache's
	// error in a spec.Error that already holds its text).
	t.Run("error-said-once", func(t *testing.T) {
		t.Parallel()
		dir := e2eURLSpec(t, "http://127.0.0.1:1/file", e2eSHA256Hex(body))
		r := invocation{dir: dir}.run(t, "build", "--offline", "--cache-dir", filepath.Join(t.TempDir(), "cache"), "-o", "oci:"+filepath.Join(t.TempDir(), "out")+":t")
		if r.code != 3 {
			t.Fatalf("exit %d, want 3\nstderr: %s", r.code, r.stderr)
		}
		if n := strings.Count(r.stderr, "forbids fetching"); n != 1 {
			t.Errorf("the error is said %d times:\n%s", n, r.stderr)
		}
	})

	// With the right pin the file is fetched once: later builds, --offline
	// or not, and with the server gone, take it from the cache and give
	// the same image, which holds the served bytes.
	t.Run("fetched-once-then-cached", func(t *testing.T) {
		t.Parallel()
		srv, hits := e2eServer(t, body)
		dir := e2eURLSpec(t, srv.URL+"/file", e2eSHA256Hex(body))
		cache := filepath.Join(t.TempDir(), "cache")
		layout := filepath.Join(t.TempDir(), "first")
		first := lastLine(repro(t, dir, "build", "-q", "--cache-dir", cache, "-o", "oci:"+layout+":t").stdout)
		if hits.Load() != 1 {
			t.Fatalf("the first build made %d requests, want 1", hits.Load())
		}
		e2eCheckFetched(t, layout, first, body)
		srv.Close()
		for _, args := range [][]string{{"--offline"}, {}} {
			out := filepath.Join(t.TempDir(), "again")
			r := repro(t, dir, append([]string{"build", "-q", "--cache-dir", cache, "-o", "oci:" + out + ":t"}, args...)...)
			if d := lastLine(r.stdout); d != first {
				t.Errorf("build %q from the cache printed %s, the first %s", args, d, first)
			}
		}
		if hits.Load() != 1 {
			t.Errorf("%d requests in all, want 1", hits.Load())
		}
	})
}

// e2eCheckFetched checks that the image's one layer holds /etc/fetched.txt
// with body, mode 0644, owned by root, at the epoch.
func e2eCheckFetched(t *testing.T, layout, digest, body string) {
	t.Helper()
	var m ocispec.Manifest
	e2eUnmarshal(t, e2eBlob(t, layout, digest), &m)
	if len(m.Layers) != 1 {
		t.Fatalf("%d layers, want 1", len(m.Layers))
	}
	f, err := os.Open(e2eBlobPath(layout, string(m.Layers[0].Digest)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatal("the layer holds no etc/fetched.txt")
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != "etc/fetched.txt" {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != body || h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != e2eEpoch {
			t.Errorf("etc/fetched.txt: %q mode %o owner %d:%d mtime %d; want %q 0644 0:0 %d",
				data, h.Mode, h.Uid, h.Gid, h.ModTime.Unix(), body, e2eEpoch)
		}
		return
	}
}

// e2eBigContext writes a spec that copies size bytes of random files.
func e2eBigContext(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "big")
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	const fileSize = 8 << 20
	rng := rand.NewChaCha8([32]byte{'r', 'e', 'p', 'r', 'o'})
	buf := make([]byte, fileSize)
	for i := 0; i*fileSize < size; i++ {
		rng.Read(buf)
		if err := os.WriteFile(filepath.Join(data, fmt.Sprintf("f%03d", i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := fmt.Sprintf("version: 1\nname: big\nepoch: %d\nlayers:\n  - name: data\n    contents:\n      - path: /data\n        source: data/\n", e2eEpoch)
	if err := os.WriteFile(filepath.Join(dir, "repro.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestE2EInterrupt: SIGINT stops a build, which exits non-zero and leaves
// no output and no temporary file behind.
func TestE2EInterrupt(t *testing.T) {
	t.Parallel()
	ctx := e2eBigContext(t, 200<<20)

	// SIGINT 300 ms in, while the layer is being written.
	t.Run("early", func(t *testing.T) {
		outDir, tmp := filepath.Join(t.TempDir(), "out"), t.TempDir()
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := e2eCommand(ctx, tmp, "build", "-q", "-o", "oci:"+filepath.Join(outDir, "img")+":t", "-o", "oci-archive:"+filepath.Join(outDir, "img.tar"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if err == nil {
			t.Fatalf("the build of 200 MB finished in 300 ms, before the interrupt; it cannot test one")
		}
		if code := cmd.ProcessState.ExitCode(); code <= 0 {
			t.Errorf("exit code %d (%v), want a non-zero exit of repro's own", code, err)
		}
		if !strings.Contains(stderr.String(), "interrupted") {
			t.Errorf("stderr does not say the build was interrupted:\n%s", stderr.String())
		}
		e2eNothingLeft(t, "the output's directory", outDir)
		e2eNothingLeft(t, "TMPDIR", tmp)
	})

	// SIGINT between two outputs: the first is written, the second is
	// being written. An interrupted build must leave nothing, as it says
	// ("interrupted; nothing was written"), yet the first output stays.
	t.Run("between-outputs", func(t *testing.T) {
		outDir, tmp := filepath.Join(t.TempDir(), "out"), t.TempDir()
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			t.Fatal(err)
		}
		first := filepath.Join(outDir, "img")
		cmd := e2eCommand(ctx, tmp, "build", "-o", "oci:"+first+":t", "-o", "oci-archive:"+filepath.Join(outDir, "img.tar"))
		// The log line that says the oci: output is written.
		stderr, signalled, err := interruptAt(t, cmd, func(line string) bool {
			return strings.Contains(line, "wrote") && strings.Contains(line, "oci:"+first)
		})
		if !signalled {
			t.Fatalf("no log line said the first output was written (%v); stderr:\n%s", err, stderr)
		}
		if err == nil {
			t.Skipf("the build finished before the interrupt arrived; stderr:\n%s", stderr)
		}
		if code := cmd.ProcessState.ExitCode(); code <= 0 {
			t.Errorf("exit code %d (%v), want a non-zero exit of repro's own", code, err)
		}
		e2eNothingLeft(t, "the outputs' directory", outDir)
		e2eNothingLeft(t, "TMPDIR", tmp)
	})

	// build --json, SIGINT once the first line reaches stderr (off a
	// terminal, and cold, that is "layer written": the outputs are being
	// written). Interrupted is an operational failure (exit 3; the
	// contract names no code of its own for it), said on stdout as the
	// one JSON error --json prints, and nothing is left.
	t.Run("json", func(t *testing.T) {
		outDir, tmp := filepath.Join(t.TempDir(), "out"), t.TempDir()
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := e2eCommand(ctx, tmp, "build", "--json", "--no-cache", "-o", "oci:"+filepath.Join(outDir, "img")+":t", "-o", "oci-archive:"+filepath.Join(outDir, "img.tar"))
		var stdout strings.Builder
		cmd.Stdout = &stdout
		stderr, signalled, err := interruptAt(t, cmd, func(string) bool { return true })
		if !signalled {
			t.Fatalf("the build printed nothing on stderr (%v); stdout:\n%s", err, stdout.String())
		}
		if err == nil {
			t.Skipf("the build finished before the interrupt arrived; stderr:\n%s", stderr)
		}
		if code := cmd.ProcessState.ExitCode(); code != 3 {
			t.Errorf("exit code %d (%v), want 3, an operational failure; stderr:\n%s", code, err, stderr)
		}
		dec := json.NewDecoder(strings.NewReader(stdout.String()))
		var got jsonError
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("stdout is not JSON (%v): %q", err, stdout.String())
		}
		if dec.More() {
			t.Errorf("stdout holds more than the one JSON error: %q", stdout.String())
		}
		if !strings.Contains(got.Error, "interrupted") || got.ExitCode != 3 || got.Kind != "operational failure" {
			t.Errorf("the JSON error is %+v, want one that says interrupted, exitCode 3, kind operational failure", got)
		}
		if !strings.Contains(stderr, "interrupted") {
			t.Errorf("stderr does not say the build was interrupted:\n%s", stderr)
		}
		e2eNothingLeft(t, "the outputs' directory", outDir)
		e2eNothingLeft(t, "TMPDIR", tmp)
	})
}

// interruptAt starts cmd, sends it SIGINT at the first line on stderr
// that at matches, and waits for it: its stderr, whether it was
// signalled, and Wait's error.
func interruptAt(t *testing.T, cmd *exec.Cmd, at func(line string) bool) (string, bool, error) {
	t.Helper()
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	sc := bufio.NewScanner(pipe)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		stderr.WriteString(line + "\n")
		if !signalled && at(line) {
			if err := cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			signalled = true
		}
	}
	return stderr.String(), signalled, cmd.Wait()
}
