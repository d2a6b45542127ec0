package e2e

// End-to-end tests of `repro test`: the conformance set in testdata/imagetest
// runs through the binary against the example images, without a runtime
// (command tests skipped) and with podman (command tests run), and each
// verdict is compared with the one written down in expected.txt.

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/reprobuild/repro/internal/testtool"
)

// testExpectation is one line of testdata/imagetest/expected.txt.
type testExpectation struct {
	image, file, name, verdict string
}

func readTestExpectations(t *testing.T) []testExpectation {
	t.Helper()
	f, err := os.Open(filepath.Join(moduleRoot(t), "testdata", "imagetest", "expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []testExpectation
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := strings.Split(line, "\t")
		if len(p) != 4 {
			t.Fatalf("expected.txt: %q is not IMAGE<tab>FILE<tab>TEST<tab>VERDICT", line)
		}
		out = append(out, testExpectation{p[0], p[1], p[2], p[3]})
	}
	return out
}

// testImages builds the example images the conformance set runs against:
// name -> oci:LAYOUT:TAG.
func testImages(t *testing.T) map[string]string {
	t.Helper()
	examples := copyExamples(t, false)
	out := t.TempDir()
	refs := map[string]string{}
	for name, spec := range map[string]string{
		"go-server":   "go-server/repro.yaml",
		"static-site": "static-site/repro.yaml",
		"multi":       "go-server/multi-platform.yaml",
	} {
		ref := "oci:" + filepath.Join(out, name) + ":" + e2eTag
		repro(t, examples, "build", "-q", "--offline", "--version", e2eVersion, "-f", filepath.Join(examples, spec), "-o", ref)
		refs[name] = ref
	}
	return refs
}

// cstResult is a result of container-structure-test's JSON report.
type cstResult struct {
	Name     string
	Pass     bool
	Skipped  bool
	Stdout   string
	Stderr   string
	Errors   []string
	Duration int64
}

type cstSummary struct {
	Pass, Fail, Skip, Total int
	Duration                int64
	Results                 []cstResult
}

func verdictOf(r cstResult) string {
	switch {
	case r.Skipped:
		return "SKIP"
	case r.Pass:
		return "PASS"
	}
	return "FAIL"
}

// runConformance runs every (image, file) pair of the expectations with
// extra arguments, and checks verdicts, totals and exit codes. With
// runtime false, command tests must be skipped.
func runConformance(t *testing.T, refs map[string]string, exps []testExpectation, runtime bool, env []string, extra ...string) {
	t.Helper()
	type key struct{ image, file string }
	groups := map[key][]testExpectation{}
	var keys []key
	for _, e := range exps {
		k := key{e.image, e.file}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], e)
	}
	dir := filepath.Join(moduleRoot(t), "testdata", "imagetest")
	for _, k := range keys {
		t.Run(k.image+"/"+k.file, func(t *testing.T) {
			if !runtime {
				t.Parallel()
			}
			args := append([]string{"test", refs[k.image], "-c", filepath.Join(dir, k.file), "-o", "json"}, extra...)
			r := invocation{env: env}.run(t, args...)
			var sum cstSummary
			if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
				t.Fatalf("repro %q: exit %d, stdout not JSON (%v):\n%s\n%s", args, r.code, err, r.stdout, r.stderr)
			}
			got := map[string]cstResult{}
			for _, res := range sum.Results {
				got[res.Name] = res
			}
			wantCode, pass, fail, skip := 0, 0, 0, 0
			for _, e := range groups[k] {
				want := e.verdict
				if !runtime && strings.Contains(e.name, "Command Test: ") {
					want = "SKIP"
				}
				switch want {
				case "PASS":
					pass++
				case "FAIL":
					fail++
					wantCode = 1
				case "SKIP":
					skip++
				}
				res, ok := got[e.name]
				if !ok {
					t.Errorf("%s: no result; results: %v", e.name, sum.Results)
					continue
				}
				if v := verdictOf(res); v != want {
					t.Errorf("%s: %s, want %s (errors %q, stdout %q, stderr %q)", e.name, v, want, res.Errors, res.Stdout, res.Stderr)
				}
			}
			if len(sum.Results) != len(groups[k]) {
				t.Errorf("%d results, expected.txt lists %d", len(sum.Results), len(groups[k]))
			}
			if sum.Pass != pass || sum.Fail != fail || sum.Skip != skip || sum.Total != pass+fail+skip {
				t.Errorf("summary pass %d fail %d skip %d total %d, want %d %d %d %d", sum.Pass, sum.Fail, sum.Skip, sum.Total, pass, fail, skip, pass+fail+skip)
			}
			if r.code != wantCode {
				t.Errorf("exit %d, want %d\n%s", r.code, wantCode, r.stderr)
			}
		})
	}
}

// TestE2ETest runs the conformance set without a runtime, then with
// podman, and checks the reports, all on one build of the examples.
func TestE2ETest(t *testing.T) {
	t.Parallel()
	exps := readTestExpectations(t)
	refs := testImages(t)
	t.Run("conformance/no-runtime", func(t *testing.T) {
		t.Parallel()
		runConformance(t, refs, exps, false, nil)
	})
	t.Run("conformance/podman", func(t *testing.T) {
		t.Parallel()
		cmd := testtool.Podman(t)
		if cmd == nil {
			return
		}
		// podman names the staged image after its path, which must be
		// lower case: a temporary directory of the test's own.
		tmp, err := os.MkdirTemp("/tmp", "reprotest")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(tmp) })
		extra := []string{"--runtime", "podman", "--podman", cmd[0]}
		for _, a := range cmd[1:] {
			extra = append(extra, "--podman-arg="+a)
		}
		runConformance(t, refs, exps, true, []string{"TMPDIR=" + tmp}, extra...)
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("repro test left %d entries in TMPDIR", len(left))
		}
		// Nothing of the tests stays in podman's storage.
		images := testtool.Run(t, cmd[0], append(cmd[1:], "images", "-a", "-q")...)
		containers := testtool.Run(t, cmd[0], append(cmd[1:], "ps", "-a", "-q")...)
		if strings.TrimSpace(images) != "" || strings.TrimSpace(containers) != "" {
			t.Errorf("podman's storage holds images %q and containers %q after the tests", images, containers)
		}
	})
	t.Run("reports", func(t *testing.T) {
		t.Parallel()
		testReports(t, refs)
	})
}

// testReports checks the formats the binary writes: JUnit on stdout, a
// report file beside the text, the text layout, and the compiler-style
// errors of a bad test file.
func testReports(t *testing.T, refs map[string]string) {
	dir := filepath.Join(moduleRoot(t), "testdata", "imagetest")
	ref := refs["go-server"]

	r := invocation{}.run(t, "test", ref, "-c", filepath.Join(dir, "go-server.yaml"), "-c", filepath.Join(dir, "meta-port-protocol.yaml"), "-o", "junit", "--junit-suite-name", "app")
	if r.code != 1 {
		t.Errorf("junit run: exit %d, want 1 (the port-protocol test fails)\n%s", r.code, r.stderr)
	}
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Failures int      `xml:"failures,attr"`
		Tests    int      `xml:"tests,attr"`
		Skipped  int      `xml:"skipped,attr"`
		Suite    struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name     string   `xml:"name,attr"`
				Failures []string `xml:"failure"`
				Skipped  *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("junit output: %v\n%s", err, r.stdout)
	}
	if doc.Suite.Name != "app" || doc.Tests != 16 || doc.Failures != 1 || doc.Skipped != 3 || len(doc.Suite.Cases) != 16 {
		t.Errorf("junit: suite %q, %d tests, %d failures, %d skipped, %d cases", doc.Suite.Name, doc.Tests, doc.Failures, doc.Skipped, len(doc.Suite.Cases))
	}

	report := filepath.Join(t.TempDir(), "report.json")
	r = invocation{}.run(t, "test", ref, "-c", filepath.Join(dir, "go-server.yaml"), "--test-report", report)
	if r.code != 0 {
		t.Errorf("text run with a report: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"====== Test file: go-server.yaml ======", "=== RUN: File Existence Test: server binary\n--- PASS\n", "--- SKIP", "Passes:      12\n", "Skipped:     3\n", "\nPASS\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, r.stdout)
		}
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var sum cstSummary
	if err := json.Unmarshal(raw, &sum); err != nil || sum.Total != 15 || sum.Pass != 12 {
		t.Errorf("the JSON report (%v): %s", err, raw)
	}

	for _, c := range []struct {
		file string
		want []string
	}{
		{"unknown-key.yaml", []string{"unknown-key.yaml:5:5: fileExistenceTests[0].permission: unknown field; did you mean \"permissions\"?"}},
		{"no-schema.yaml", []string{"no-schema.yaml:1:1: schemaVersion: missing"}},
	} {
		r := invocation{}.run(t, "test", ref, "-c", filepath.Join(dir, "bad", c.file))
		if r.code != 2 || r.stdout != "" {
			t.Errorf("%s: exit %d, stdout %q; want 2 and nothing", c.file, r.code, r.stdout)
		}
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", c.file, w, r.stderr)
			}
		}
	}
	// Bad usage.
	for _, args := range [][]string{
		{"test", ref},
		{"test", ref, "-c", filepath.Join(dir, "go-server.yaml"), "-o", "xml"},
		{"test", ref, "-c", filepath.Join(dir, "go-server.yaml"), "--runtime", "docker"},
		{"test", "-c", filepath.Join(dir, "go-server.yaml")},
	} {
		if r := (invocation{}).run(t, args...); r.code != 2 {
			t.Errorf("repro %q: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
	// --platform narrows an index.
	r = invocation{}.run(t, "test", refs["multi"], "-c", filepath.Join(dir, "multi-platform.yaml"), "--platform", "linux/arm64", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Total != 5 || r.code != 0 {
		t.Errorf("--platform linux/arm64: exit %d, %v:\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	var names []string
	for _, res := range sum.Results {
		names = append(names, res.Name)
	}
	sort.Strings(names)
	if len(names) > 0 && strings.HasPrefix(names[0], "[") {
		t.Errorf("with --platform, names carry no platform: %v", names)
	}
}
