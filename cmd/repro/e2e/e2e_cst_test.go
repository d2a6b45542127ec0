package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobuild/repro/internal/testtool"
)

// TestE2ECSTOwnFiles runs container-structure-test's own test files
// (testdata/imagetest/cst, see its README) through repro test, on repro
// builds of the images they describe, and requires upstream's verdicts:
// the metadata file passes (exit 0); the failure file fails (exit 1),
// test by test as written down below. Command tests run through podman,
// which CI=true requires.
func TestE2ECSTOwnFiles(t *testing.T) {
	t.Parallel()
	src := filepath.Join(moduleRoot(t), "testdata", "imagetest", "cst")
	ctx := t.TempDir()
	for _, f := range []string{"metadata.repro.yaml", "ubuntu.repro.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ctx, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile(regBusybox(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctx, "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctx, "copyright"), []byte("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: busybox\n\nFiles: *\nLicense: GPL-2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	meta := "oci:" + filepath.Join(out, "meta") + ":" + e2eTag
	ubuntu := "oci:" + filepath.Join(out, "ubuntu") + ":" + e2eTag
	repro(t, ctx, "build", "-q", "--offline", "-f", "metadata.repro.yaml", "-o", meta)
	repro(t, ctx, "build", "-q", "--offline", "-f", "ubuntu.repro.yaml", "-o", ubuntu)

	// run runs repro test in src (the envFile test names tests/envfile
	// relative to where it runs, as upstream runs from its repository).
	run := func(t *testing.T, ref, file string, env []string, extra ...string) (cstSummary, result) {
		t.Helper()
		args := append([]string{"test", ref, "-c", filepath.Join(src, file), "-o", "json"}, extra...)
		r := invocation{dir: src, env: env}.run(t, args...)
		var sum cstSummary
		if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
			t.Fatalf("repro %q: exit %d, stdout not JSON (%v):\n%s\n%s", args, r.code, err, r.stdout, r.stderr)
		}
		return sum, r
	}

	t.Run("metadata", func(t *testing.T) {
		sum, r := run(t, meta, "ubuntu_22_04_metadata_test.yaml", nil)
		if r.code != 0 || sum.Total != 1 || sum.Pass != 1 {
			t.Errorf("exit %d, summary %+v; want the one metadata test to pass\n%s", r.code, sum, r.stderr)
		}
		// The same file with a value changed fails: the test reads what
		// the file says.
		b, err := os.ReadFile(filepath.Join(src, "ubuntu_22_04_metadata_test.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		os.WriteFile(bad, []byte(strings.Replace(string(b), "'SOME_VAL'", "'OTHER_VAL'", 1)), 0o644)
		r = invocation{}.run(t, "test", meta, "-c", bad)
		if r.code != 1 || !strings.Contains(r.stdout, `env var SOME_KEY is "SOME_VAL", want "OTHER_VAL"`) {
			t.Errorf("a changed value: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	podman := func(t *testing.T) ([]string, []string) {
		t.Helper()
		cmd := testtool.Podman(t)
		if cmd == nil {
			return nil, nil
		}
		// podman names the staged image after its path, which must be
		// lower case: a temporary directory of the test's own.
		tmp, err := os.MkdirTemp("/tmp", "reprocst")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(tmp) })
		extra := []string{"--runtime", "podman", "--podman", cmd[0]}
		for _, a := range cmd[1:] {
			extra = append(extra, "--podman-arg="+a)
		}
		return []string{"TMPDIR=" + tmp}, extra
	}
	// verdicts checks each result named in want, that each of skipped
	// (Ubuntu-specific) is there, and that there is nothing else.
	verdicts := func(t *testing.T, sum cstSummary, want map[string]string, skipped []string) map[string]cstResult {
		t.Helper()
		got := map[string]cstResult{}
		for _, res := range sum.Results {
			got[res.Name] = res
		}
		for name, v := range want {
			res, ok := got[name]
			if !ok {
				t.Errorf("%s: no result", name)
				continue
			}
			if verdictOf(res) != v {
				t.Errorf("%s: %s, want %s (errors %q, stdout %q, stderr %q)", name, verdictOf(res), v, res.Errors, res.Stdout, res.Stderr)
			}
		}
		for _, name := range skipped {
			if _, ok := got[name]; !ok {
				t.Errorf("%s: no result", name)
			}
		}
		if sum.Total != len(want)+len(skipped) {
			t.Errorf("%d results, want %d: %+v", sum.Total, len(want)+len(skipped), sum.Results)
		}
		return got
	}

	t.Run("positive", func(t *testing.T) {
		env, extra := podman(t)
		if extra == nil {
			return
		}
		sum, r := run(t, ubuntu, "ubuntu_22_04_test.yaml", env, extra...)
		// Upstream: PASS, exit 0. Here apt-get and apt-config are absent,
		// so the run fails on those two alone.
		if r.code != 1 {
			t.Errorf("exit %d, want 1 (the two Ubuntu-specific command tests fail)\n%s", r.code, r.stderr)
		}
		verdicts(t, sum, map[string]string{
			"Command Test: path":                "PASS",
			"File Content Test: Debian Sources": "PASS",
			"File Content Test: Passwd file":    "PASS",
			"File Existence Test: Root":         "PASS",
			"File Existence Test: Date":         "PASS",
			"File Existence Test: Hosts File":   "PASS",
			"File Existence Test: Machine ID":   "PASS",
			"File Existence Test: Dummy File":   "PASS",
			"License Test":                      "PASS",
		}, []string{"Command Test: apt-get", "Command Test: apt-config"})
	})

	t.Run("containerRunOptions", func(t *testing.T) {
		env, extra := podman(t)
		if extra == nil {
			return
		}
		for _, c := range []struct{ file, name string }{
			{"ubuntu_22_04_containeropts_env_test.yaml", "Command Test: Test envVars containerRunOptions"},
			{"ubuntu_22_04_containeropts_envfile_test.yaml", "Command Test: Test envFile containerRunOptions"},
		} {
			// As upstream's script runs the envVars test: FOO and BAR set.
			sum, r := run(t, ubuntu, c.file, append([]string{"FOO=keepitsecret!", "BAR=keepitsafe!"}, env...), extra...)
			if r.code != 0 {
				t.Errorf("%s: exit %d, want 0 (upstream: PASS)\n%s", c.file, r.code, r.stderr)
			}
			verdicts(t, sum, map[string]string{c.name: "PASS"}, nil)
		}
		// Without FOO and BAR in repro's environment, envVars passes
		// nothing on, and the test fails: the variables come through
		// podman, not from the image.
		if _, r := run(t, ubuntu, "ubuntu_22_04_containeropts_env_test.yaml", env, extra...); r.code != 1 {
			t.Errorf("envVars without FOO and BAR set: exit %d, want 1", r.code)
		}
	})

	t.Run("failure", func(t *testing.T) {
		env, extra := podman(t)
		if extra == nil {
			return
		}
		sum, r := run(t, ubuntu, "ubuntu_22_04_failure_test.yaml", env, extra...)
		if r.code != 1 {
			t.Errorf("exit %d, want 1 (upstream: FAIL)\n%s", r.code, r.stderr)
		}
		want := map[string]string{
			"Command Test: path":                     "PASS",
			"File Content Test: Debian Sources":      "FAIL",
			"File Content Test: Wrong Retry Policy":  "FAIL",
			"File Existence Test: Fake Dir":          "FAIL",
			"File Existence Test: Wrong permissions": "FAIL",
			"License Test":                           "PASS",
		}
		// Ubuntu-specific: they run apt-get and apt-config.
		got := verdicts(t, sum, want, []string{"Command Test: bad apt-get-command", "Command Test: apt-config"})
		if res := got["File Existence Test: Wrong permissions"]; len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "permissions -rw-r--r--, want -rwxrwxrwx") {
			t.Errorf("Wrong permissions fails for another reason: %q", res.Errors)
		}
	})
}
