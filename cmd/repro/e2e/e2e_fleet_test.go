package e2e

// The local fleet: what a CI matrix does, on one machine. Several
// `repro build --platform P --push-by-digest` processes, each in its own
// clone with its own cache directory, push to one docker-registry; then
// `repro index` assembles, pushes and signs the index, whose digest is
// the one a single `repro build` of every platform gives.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/reprobuild/repro/internal/testtool"
)

var fleetPlatforms = []string{"linux/amd64", "linux/arm64", "linux/arm/v7"}

// fleetSpec is the fleet example with busybox in it, so that podman can
// run what the fleet pushed; the revision annotation makes the commit
// part of every manifest.
const fleetSpec = `version: 1
name: fleet
epoch: 1700000000
platforms: [linux/amd64, linux/arm64, linux/arm/v7]
vars: {repo: localhost:5000/fleet}
layers:
  - name: tools
    contents:
      - {path: /bin/busybox, source: busybox, mode: "0755"}
  - name: platform
    contents:
      - path: /etc/platform
        source: platform/{{.Os}}-{{.Arch}}{{.Variant}}.txt
config:
  entrypoint: [/bin/busybox]
  env: {PLATFORM_FILE: /etc/platform}
annotations:
  org.opencontainers.image.version: "{{.Version}}"
  org.opencontainers.image.revision: "{{.GitCommit}}"
tags:
  - "{{.Vars.repo}}:{{.Version}}"
  - "{{.Vars.repo}}:latest"
`

// fleetRepo makes a git repository holding the fleet spec and its inputs.
func fleetRepo(t *testing.T) string {
	t.Helper()
	busybox := regBusybox(t)
	if busybox == "" {
		return ""
	}
	dir := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(filepath.Join(dir, "platform"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile := func(p string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("repro.yaml", []byte(fleetSpec))
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	writeFile("busybox", bb)
	for _, p := range []string{"linux-amd64", "linux-arm64", "linux-armv7"} {
		writeFile(filepath.Join("platform", p+".txt"), []byte(p+"\n"))
	}
	git(t, dir, "init", "-q", "-b", "main")
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "fleet")
	return dir
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_AUTHOR_DATE=1700000000 +0000", "GIT_COMMITTER_DATE=1700000000 +0000")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// fleetMeta is what --metadata-file records of a push by digest.
type fleetMeta struct {
	Digest         string `json:"digest"`
	PushedByDigest string `json:"pushedByDigest"`
	Manifests      []struct {
		Platform string `json:"platform"`
		Digest   string `json:"digest"`
	} `json:"manifests"`
}

// fleetRunners runs one build per platform, in parallel, each in its own
// clone of src with its own cache directory, and returns platform -> ref.
func fleetRunners(t *testing.T, src, repo string, platforms []string, extra ...string) map[string]string {
	t.Helper()
	refs := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan string, len(platforms))
	for i, p := range platforms {
		clone := filepath.Join(t.TempDir(), fmt.Sprintf("runner%d", i))
		git(t, filepath.Dir(clone), "clone", "-q", src, clone)
		cache, meta := t.TempDir(), filepath.Join(t.TempDir(), "meta.json")
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append([]string{"build", "-q", "-f", "repro.yaml", "--version", "1.2.3", "--platform", p,
				"--push-by-digest", repo, "--cache-dir", cache, "--metadata-file", meta}, extra...)
			r := invocation{dir: clone}.run(t, args...)
			if r.code != 0 {
				errs <- fmt.Sprintf("runner %s: exit %d\n%s", p, r.code, r.stderr)
				return
			}
			digest := lastLine(r.stdout)
			var m fleetMeta
			raw, err := os.ReadFile(meta)
			if err == nil {
				err = json.Unmarshal(raw, &m)
			}
			if err != nil {
				errs <- fmt.Sprintf("runner %s: --metadata-file: %v", p, err)
				return
			}
			if want := repo + "@" + digest; m.PushedByDigest != want || m.Digest != digest {
				errs <- fmt.Sprintf("runner %s: metadata says digest %s pushedByDigest %s; it printed %s", p, m.Digest, m.PushedByDigest, digest)
				return
			}
			mu.Lock()
			refs[p] = repo + "@" + digest
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		t.FailNow()
	}
	return refs
}

func fleetTags(t *testing.T, host, repo string) []string {
	t.Helper()
	resp, err := http.Get("http://" + host + "/v2/" + repo + "/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	body, _ := io.ReadAll(resp.Body)
	var l struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatalf("tags/list: %v: %s", err, body)
	}
	slices.Sort(l.Tags)
	return l.Tags
}

// TestE2EFleet: per-platform runners push by digest, repro index gives
// the single-machine digest whatever the order of its arguments, refuses
// what the spec would not make, writes a layout, pushes the tags, signs
// the index (cosign verify accepts it), podman runs the amd64 image from
// the registry, and repro verify --against the index passes.
func TestE2EFleet(t *testing.T) {
	reg := regStart(t, "")
	if reg == nil {
		return
	}
	src := fleetRepo(t)
	if src == "" {
		return
	}
	repo := reg.host + "/fleet"
	single := filepath.Join(t.TempDir(), "single")
	want := lastLine(repro(t, src, "build", "-q", "-f", "repro.yaml", "--version", "1.2.3", "-o", "oci:"+single+":one").stdout)

	refs := fleetRunners(t, src, repo, fleetPlatforms)
	if tags := fleetTags(t, reg.host, "fleet"); len(tags) != 0 {
		t.Fatalf("--push-by-digest tagged %v; it pushes by digest only", tags)
	}
	inOrder := []string{refs["linux/arm/v7"], refs["linux/amd64"], refs["linux/arm64"]}

	t.Run("digest without outputs", func(t *testing.T) {
		meta := filepath.Join(t.TempDir(), "index.json")
		r := repro(t, src, "index", "-q", "-f", "repro.yaml", "--version", "1.2.3", inOrder[0], inOrder[1], inOrder[2], "--metadata-file", meta)
		if got := lastLine(r.stdout); got != want {
			t.Fatalf("repro index printed %s; repro build of every platform gave %s", got, want)
		}
		var m struct {
			Digest    string `json:"digest"`
			MediaType string `json:"mediaType"`
			Manifests []struct {
				Platform, Digest string
			} `json:"manifests"`
		}
		raw, err := os.ReadFile(meta)
		if err != nil {
			t.Fatal(err)
		}
		e2eUnmarshal(t, raw, &m)
		if m.Digest != want || m.MediaType != "application/vnd.oci.image.index.v1+json" || len(m.Manifests) != 3 || m.Manifests[0].Platform != "linux/amd64" {
			t.Errorf("--metadata-file: %s", raw)
		}
		for _, mm := range m.Manifests {
			if refs[mm.Platform] != repo+"@"+mm.Digest {
				t.Errorf("--metadata-file names %s for %s; the runner pushed %s", mm.Digest, mm.Platform, refs[mm.Platform])
			}
		}
		j := repro(t, src, "index", "--json", "-f", "repro.yaml", "--version", "1.2.3", inOrder[0], inOrder[1], inOrder[2])
		var jm struct{ Digest string }
		e2eUnmarshal(t, []byte(j.stdout), &jm)
		if jm.Digest != want {
			t.Errorf("--json: %s", j.stdout)
		}
		if tags := fleetTags(t, reg.host, "fleet"); len(tags) != 0 {
			t.Fatalf("repro index without --push tagged %v", tags)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		other := fleetRunners(t, src, repo, []string{"linux/amd64"}, "--version", "9.9.9")["linux/amd64"]
		// A runner that checked out another commit: the commit reaches the
		// revision annotation.
		next := filepath.Join(t.TempDir(), "next")
		git(t, filepath.Dir(next), "clone", "-q", src, next)
		git(t, next, "commit", "-q", "--allow-empty", "-m", "next")
		moved := fleetRunners(t, next, repo, []string{"linux/amd64"})["linux/amd64"]
		cases := []struct {
			name string
			args []string
			want string
		}{
			{"platform twice", []string{refs["linux/amd64"], refs["linux/amd64"], refs["linux/arm64"], refs["linux/arm/v7"]}, "linux/amd64 is given twice"},
			{"platform missing", []string{refs["linux/amd64"], refs["linux/arm64"]}, "no manifest for linux/arm/v7"},
			{"platform the spec lacks", []string{"--platform", "linux/amd64,linux/arm64", refs["linux/amd64"], refs["linux/arm64"], refs["linux/arm/v7"]}, "linux/arm/v7"},
			{"another version", []string{other, refs["linux/arm64"], refs["linux/arm/v7"]}, `org.opencontainers.image.version = "9.9.9", the spec makes "1.2.3"`},
			{"another commit", []string{moved, refs["linux/arm64"], refs["linux/arm/v7"]}, "org.opencontainers.image.revision"},
			{"not by digest", []string{repo + ":1.2.3", refs["linux/arm64"], refs["linux/arm/v7"]}, "@sha256:"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := invocation{dir: src}.run(t, append([]string{"index", "-f", "repro.yaml", "--version", "1.2.3"}, c.args...)...)
				t.Log(strings.TrimSpace(r.stderr))
				if r.code != 2 || !strings.Contains(r.stderr, c.want) {
					t.Fatalf("exit %d, want 2 with %q:\n%s", r.code, c.want, r.stderr)
				}
			})
		}
		if tags := fleetTags(t, reg.host, "fleet"); len(tags) != 0 {
			t.Fatalf("a refused repro index tagged %v", tags)
		}
	})

	t.Run("push, layout and sign", func(t *testing.T) {
		e := newSignEnv(t, true)
		if e == nil {
			return
		}
		layout := filepath.Join(t.TempDir(), "layout")
		r := invocation{dir: src, env: []string{"COSIGN_PASSWORD=pw"}}.run(t, "index", "-q", "-f", "repro.yaml", "--version", "1.2.3",
			"--var", "repo="+repo, inOrder[0], inOrder[1], inOrder[2], "-o", "oci:"+layout+":v1", "--push", "--sign", "--key", e.edKey)
		if r.code != 0 {
			t.Fatalf("repro index --push --sign: exit %d\n%s", r.code, r.stderr)
		}
		if got := lastLine(r.stdout); got != want {
			t.Fatalf("repro index --push printed %s, want %s", got, want)
		}
		if tags := fleetTags(t, reg.host, "fleet"); !slices.Contains(tags, "1.2.3") || !slices.Contains(tags, "latest") {
			t.Fatalf("tags after --push: %v, want 1.2.3 and latest", tags)
		}
		skopeo := testtool.Require(t, "skopeo")
		if skopeo == nil {
			return
		}
		for _, ref := range []string{"docker://" + repo + ":1.2.3", "oci:" + layout + ":v1"} {
			raw := testtool.Run(t, skopeo["skopeo"], "inspect", "--tls-verify=false", "--raw", ref)
			if got := e2eDigestOf([]byte(raw)); got != want {
				t.Errorf("%s holds %s, want %s", ref, got, want)
			}
		}
		// The layout holds every blob: skopeo copies each platform out of it.
		for _, p := range fleetPlatforms {
			parts := strings.Split(p, "/")
			args := []string{"copy", "--override-os", parts[0], "--override-arch", parts[1]}
			if len(parts) == 3 {
				args = append(args, "--override-variant", parts[2])
			}
			testtool.Run(t, skopeo["skopeo"], append(args, "oci:"+layout+":v1", "oci:"+filepath.Join(t.TempDir(), "copy")+":x")...)
		}
		out, _ := runCosign(t, e.dir, nil, 0, append([]string{"verify", repo + ":1.2.3"}, e.cosignVerifyArgs(e.edPub)...)...)
		if !strings.Contains(out, want) {
			t.Errorf("cosign verify names no %s:\n%s", want, out)
		}
		att, _ := runCosign(t, e.dir, nil, 0, append([]string{"verify-attestation", "--type", "slsaprovenance1", repo + ":1.2.3"}, e.cosignVerifyArgs(e.edPub)...)...)
		for _, ref := range refs {
			d := ref[strings.Index(ref, "@sha256:")+len("@sha256:"):]
			if !strings.Contains(fleetPayloads(t, att), d) {
				t.Errorf("the index's provenance does not name the per-platform build %s", ref)
			}
		}
		runCosign(t, e.dir, nil, 1, append([]string{"verify", repo + ":1.2.3"}, e.cosignVerifyArgs(e.ecPub)...)...)
	})

	t.Run("podman runs the amd64 image", func(t *testing.T) {
		podman := testtool.Podman(t)
		if podman == nil {
			return
		}
		got := testtool.Run(t, podman[0], slices.Concat(podman[1:], []string{"run", "--rm", "--tls-verify=false", "--platform", "linux/amd64",
			repo + ":1.2.3", "cat", "/etc/platform"})...)
		if got != "linux-amd64\n" {
			t.Errorf("podman run printed %q, want linux-amd64", got)
		}
	})

	t.Run("verify against the index", func(t *testing.T) {
		r := invocation{dir: src}.run(t, "verify", "-f", "repro.yaml", "--version", "1.2.3", "--against", repo+":1.2.3")
		if r.code != 0 {
			t.Fatalf("repro verify --against the assembled index: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

// fleetPayloads decodes the DSSE payloads that cosign verify-attestation
// prints, one JSON envelope a line.
func fleetPayloads(t *testing.T, out string) string {
	t.Helper()
	var all strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var env struct {
			Payload []byte `json:"payload"`
		}
		if err := json.Unmarshal([]byte(line), &env); err != nil {
			t.Fatalf("cosign verify-attestation printed %q: %v", line, err)
		}
		all.Write(env.Payload)
	}
	return all.String()
}
