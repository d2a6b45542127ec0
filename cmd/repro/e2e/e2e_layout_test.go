package e2e

// Layout writes under faults: gc racing builds, concurrent first writes,
// kill -9 at random moments (into a layout and during a push), two builds
// on one layout and cache, and a full disk. The invariant everywhere:
// exit 0 or 3, never a wrong image, never a tag to an incomplete image,
// old content intact, and no debris once the next command has run.
//
// Loop counts are small for CI; REPRO_SOAK=N multiplies the rounds for a
// manual soak run, and REPRO_LAYOUT_BIN runs them against another repro
// binary (an older one, to measure what the fix changed).

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/testtool"
)

func lfBin() string {
	if b := os.Getenv("REPRO_LAYOUT_BIN"); b != "" {
		return b
	}
	return reproBin
}

// lfRounds is n, times REPRO_SOAK when set.
func lfRounds(n int) int {
	if k, err := strconv.Atoi(os.Getenv("REPRO_SOAK")); err == nil && k > 0 {
		return n * k
	}
	return n
}

// lfContext makes a build context whose spec takes a data file chosen by
// --var n=<name> (data-<name>), and a common file every build shares; the
// annotation makes each n its own manifest. sizes maps names to sizes of
// random (incompressible) data.
func lfContext(t *testing.T, sizes map[string]int) string {
	t.Helper()
	dir := t.TempDir()
	spec := `version: 1
name: lf
base: scratch
epoch: 1700000000
vars: {n: "0"}
layers:
  - name: common
    contents:
      - path: /common
        source: common
  - name: data
    contents:
      - path: /data
        source: data-{{.Vars.n}}
annotations: {n: "{{.Vars.n}}"}
`
	files := map[string]int{"common": 256 << 10}
	for n, size := range sizes {
		files["data-"+n] = size
	}
	for name, size := range files {
		b := make([]byte, size)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "repro.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// lfCommand is the repro binary in dir with TMPDIR tmp.
func lfCommand(dir, tmp string, args ...string) *exec.Cmd {
	cmd := exec.Command(lfBin(), args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + tmp}
	return cmd
}

// lfRun runs repro and returns its exit code, stdout and stderr.
func lfRun(t *testing.T, dir, tmp string, args ...string) (int, string, string) {
	t.Helper()
	cmd := lfCommand(dir, tmp, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("running repro: %v", err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// lfDigest is the last line of a build's stdout.
func lfDigest(stdout string) string {
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	return lines[len(lines)-1]
}

// lfResolve checks that tag in the layout names a complete image: the
// entry's manifest, config and every layer are there and hash to their
// digests (children of an index too). It returns the tagged digest.
func lfResolve(layout, tag string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		return "", err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return "", fmt.Errorf("index.json: %w", err)
	}
	var found *ocispec.Descriptor
	for i, d := range idx.Manifests {
		if d.Annotations[ocispec.AnnotationRefName] == tag {
			if found != nil {
				return "", fmt.Errorf("tag %s twice in index.json", tag)
			}
			found = &idx.Manifests[i]
		}
	}
	if found == nil {
		return "", fmt.Errorf("no tag %s", tag)
	}
	return found.Digest.String(), lfBlobTree(layout, *found)
}

func lfBlobTree(layout string, d ocispec.Descriptor) error {
	b, err := os.ReadFile(filepath.Join(layout, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != d.Digest.Encoded() || int64(len(b)) != d.Size {
		return fmt.Errorf("blob %s: %d bytes hashing to %x", d.Digest, len(b), sum)
	}
	switch d.MediaType {
	case ocispec.MediaTypeImageManifest:
		var m ocispec.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		for _, c := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			if err := lfBlobTree(layout, c); err != nil {
				return err
			}
		}
	case ocispec.MediaTypeImageIndex:
		var m ocispec.Index
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		for _, c := range m.Manifests {
			if err := lfBlobTree(layout, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// lfSkopeo checks the tag with skopeo inspect.
func lfSkopeo(t *testing.T, layout, tag string) {
	t.Helper()
	if out, err := exec.Command("skopeo", "inspect", "oci:"+layout+":"+tag).CombinedOutput(); err != nil {
		t.Errorf("skopeo inspect oci:%s:%s: %v\n%s", layout, tag, err, out)
	}
}

// lfDebris lists the temporary names under root (recursively): what a
// writer leaves when it is killed or fails.
func lfDebris(root string) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == root {
			return nil
		}
		name := d.Name()
		if strings.Contains(name, ".tmp") || strings.HasPrefix(name, "repro-") || strings.HasPrefix(name, "layer-") {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	return out
}

// TestE2ELayoutGCRace: builds with several outputs into one layout while
// `repro gc` runs in a loop on it. Every build exits 0 and every tag it
// wrote resolves in full.
func TestE2ELayoutGCRace(t *testing.T) {
	t.Parallel()
	testtool.Require(t, "skopeo")
	const builds = 6
	sizes := map[string]int{}
	for i := range builds {
		sizes[strconv.Itoa(i)] = 12 << 20
	}
	ctx := lfContext(t, sizes)
	tmp := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	archives := t.TempDir()
	if code, _, stderr := lfRun(t, ctx, tmp, "build", "-q", "-o", "oci:"+out+":seed"); code != 0 {
		t.Fatalf("seed build: exit %d\n%s", code, stderr)
	}
	rounds := lfRounds(1)
	var exit0, failed, broken, gcRuns int
	for round := range rounds {
		stop := make(chan struct{})
		type gcResult struct {
			runs int
			err  error
		}
		gcDone := make(chan gcResult)
		go func() {
			n := 0
			for {
				select {
				case <-stop:
					gcDone <- gcResult{n, nil}
					return
				default:
				}
				cmd := lfCommand(ctx, tmp, "gc", "oci:"+out, "--keep-days", "36500", "--keep-last", "1000")
				if b, err := cmd.CombinedOutput(); err != nil {
					<-stop
					gcDone <- gcResult{n, fmt.Errorf("gc: %v\n%s", err, b)}
					return
				}
				n++
			}
		}()
		var wg sync.WaitGroup
		codes := make([]int, builds)
		stdouts := make([]string, builds)
		stderrs := make([]string, builds)
		for i := range builds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tag := fmt.Sprintf("r%d-b%d", round, i)
				// The archive is written after the layout's blobs are
				// staged and before any output is committed.
				codes[i], stdouts[i], stderrs[i] = lfRun(t, ctx, tmp, "build", "-q", "--var", "n="+strconv.Itoa(i),
					"-o", "oci:"+out+":"+tag+"-x", "-o", "oci:"+out+":"+tag+"-y",
					"-o", "oci-archive:"+filepath.Join(archives, tag+".tar"))
			}()
		}
		wg.Wait()
		close(stop)
		res := <-gcDone
		gcRuns += res.runs
		if res.err != nil {
			t.Error(res.err)
		}
		for i, code := range codes {
			tag := fmt.Sprintf("r%d-b%d", round, i)
			if code != 0 {
				failed++
				t.Errorf("build %s: exit %d\n%s", tag, code, stderrs[i])
				continue
			}
			exit0++
			for _, s := range []string{"-x", "-y"} {
				got, err := lfResolve(out, tag+s)
				if err != nil {
					broken++
					t.Errorf("after gc raced it, build %s exited 0 but its tag %s does not resolve: %v", tag, tag+s, err)
				} else if want := lfDigest(stdouts[i]); got != want {
					broken++
					t.Errorf("build %s printed %s, its tag %s names %s", tag, want, tag+s, got)
				}
			}
		}
	}
	// One gc after the race, and every tag still resolves (skopeo too).
	if code, _, stderr := lfRun(t, ctx, tmp, "gc", "oci:"+out, "--keep-days", "36500", "--keep-last", "1000"); code != 0 {
		t.Fatalf("gc: exit %d\n%s", code, stderr)
	}
	for round := range rounds {
		for i := range builds {
			tag := fmt.Sprintf("r%d-b%d-x", round, i)
			if _, err := lfResolve(out, tag); err == nil {
				lfSkopeo(t, out, tag)
			}
		}
	}
	if d := lfDebris(filepath.Dir(out)); len(d) > 0 {
		t.Errorf("debris in the layout after gc: %v", d)
	}
	t.Logf("gc race: %d rounds of %d builds × 3 outputs, %d gc runs meanwhile: %d exited 0, %d failed, %d tags broken",
		rounds, builds, gcRuns, exit0, failed, broken)
}

// TestE2ELayoutConcurrentCreate: 8 builds race to create one layout that
// does not exist yet; all land.
func TestE2ELayoutConcurrentCreate(t *testing.T) {
	t.Parallel()
	const builds = 8
	sizes := map[string]int{}
	for i := range builds {
		sizes[strconv.Itoa(i)] = 64 << 10
	}
	ctx := lfContext(t, sizes)
	tmp := t.TempDir()
	rounds := lfRounds(2)
	var failedRounds, failedBuilds int
	for round := range rounds {
		out := filepath.Join(t.TempDir(), "same")
		var wg sync.WaitGroup
		codes := make([]int, builds)
		stdouts := make([]string, builds)
		stderrs := make([]string, builds)
		for i := range builds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], stdouts[i], stderrs[i] = lfRun(t, ctx, tmp, "build", "-q", "--var", "n="+strconv.Itoa(i), "-o", fmt.Sprintf("oci:%s:t%d", out, i))
			}()
		}
		wg.Wait()
		bad := 0
		for i, code := range codes {
			if code != 0 {
				bad++
				t.Errorf("round %d: build %d of %d racing to create the layout: exit %d\n%s", round, i, builds, code, stderrs[i])
				continue
			}
			got, err := lfResolve(out, fmt.Sprintf("t%d", i))
			if err != nil {
				bad++
				t.Errorf("round %d: build %d exited 0, its tag does not resolve: %v", round, i, err)
			} else if want := lfDigest(stdouts[i]); got != want {
				bad++
				t.Errorf("round %d: build %d printed %s, its tag names %s", round, i, want, got)
			}
		}
		if bad > 0 {
			failedRounds++
			failedBuilds += bad
		}
		if round == 0 && bad == 0 {
			testtool.Require(t, "skopeo")
			for i := range builds {
				lfSkopeo(t, out, fmt.Sprintf("t%d", i))
			}
		}
		if d := lfDebris(filepath.Dir(out)); len(d) > 0 {
			t.Errorf("round %d: debris beside the layout: %v", round, d)
		}
	}
	t.Logf("concurrent create: %d rounds of %d builds: %d rounds with a failure, %d builds lost", rounds, builds, failedRounds, failedBuilds)
}

// TestE2ELayoutSharedCache: two builds race on one layout and one
// --cache-dir, round after round; both land, and a warm build of either
// gives the digest the race printed.
func TestE2ELayoutSharedCache(t *testing.T) {
	t.Parallel()
	ctx := lfContext(t, map[string]int{"a": 1 << 20, "b": 1 << 20})
	tmp := t.TempDir()
	cache := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	for round := range lfRounds(2) {
		var wg sync.WaitGroup
		digests := map[string]string{}
		var mu sync.Mutex
		for _, n := range []string{"a", "b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, stdout, stderr := lfRun(t, ctx, tmp, "build", "-q", "--cache-dir", cache, "--var", "n="+n, "-o", fmt.Sprintf("oci:%s:r%d-%s", out, round, n))
				if code != 0 {
					t.Errorf("round %d: build %s: exit %d\n%s", round, n, code, stderr)
					return
				}
				mu.Lock()
				digests[n] = lfDigest(stdout)
				mu.Unlock()
			}()
		}
		wg.Wait()
		for n, want := range digests {
			got, err := lfResolve(out, fmt.Sprintf("r%d-%s", round, n))
			if err != nil {
				t.Errorf("round %d: %s: %v", round, n, err)
			} else if got != want {
				t.Errorf("round %d: %s tagged %s, the build printed %s", round, n, got, want)
			}
			code, stdout, stderr := lfRun(t, ctx, tmp, "build", "-q", "--cache-dir", cache, "--var", "n="+n, "-o", "oci:"+filepath.Join(t.TempDir(), "warm"))
			if code != 0 || lfDigest(stdout) != want {
				t.Errorf("round %d: warm build of %s: exit %d, digest %q, want %s\n%s", round, n, code, lfDigest(stdout), want, stderr)
			}
		}
	}
	if d := append(lfDebris(filepath.Dir(out)), lfDebris(tmp)...); len(d) > 0 {
		t.Errorf("debris: %v", d)
	}
}

// lfKillAt starts cmd and sends it SIGKILL after at, unless it ends first;
// it reports whether it ended by itself (exit 0) and how long it ran.
func lfKillAt(t *testing.T, cmd *exec.Cmd, at time.Duration) (bool, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(at):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	return cmd.ProcessState.Success(), time.Since(start)
}

// TestE2ELayoutKill: kill -9 of repro at random moments of a build into a
// layout that holds another image. The old image stays whole, the new tag
// is absent or whole, and the next build leaves no debris behind, in the
// layout, beside it or in TMPDIR.
func TestE2ELayoutKill(t *testing.T) {
	t.Parallel()
	kills := lfRounds(5)
	sizes := map[string]int{"old": 1 << 20}
	for i := range kills {
		sizes[strconv.Itoa(i)] = 8 << 20
	}
	ctx := lfContext(t, sizes)
	tmp := t.TempDir()
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	code, stdout, stderr := lfRun(t, ctx, tmp, "build", "-q", "--var", "n=old", "-o", "oci:"+out+":old")
	if code != 0 {
		t.Fatalf("build: exit %d\n%s", code, stderr)
	}
	old := lfDigest(stdout)
	// How long a build takes here: the kills fall within it.
	start := time.Now()
	if code, _, stderr := lfRun(t, ctx, tmp, "build", "-q", "--var", "n=0", "-o", "oci:"+filepath.Join(t.TempDir(), "probe")); code != 0 {
		t.Fatalf("build: exit %d\n%s", code, stderr)
	}
	took := time.Since(start)
	seed := uint64(time.Now().UnixNano())
	rng := mrand.New(mrand.NewPCG(seed, 0))
	t.Logf("kill: a build takes %v; seed %d", took, seed)
	var landed, killed int
	for i := range kills {
		tag := "new" + strconv.Itoa(i)
		cmd := lfCommand(ctx, tmp, "build", "-q", "--var", "n="+strconv.Itoa(i), "-o", "oci:"+out+":"+tag, "-o", "oci-archive:"+filepath.Join(parent, "new.tar"))
		at := time.Duration(rng.Int64N(int64(took) * 11 / 10))
		if finished, ran := lfKillAt(t, cmd, at); finished {
			landed++
			took = ran // the kills fall within what a build takes now
		} else {
			killed++
		}
		if got, err := lfResolve(out, "old"); err != nil || got != old {
			t.Errorf("kill %d at %v: the old image: %s, %v", i, at, got, err)
		}
		got, err := lfResolve(out, tag)
		if err != nil && !strings.HasPrefix(err.Error(), "no tag") {
			t.Errorf("kill %d at %v: the new tag points at an incomplete image: %v", i, at, err)
		}
		if err == nil {
			// A tag that is there names the image an unkilled build makes.
			code, stdout, stderr := lfRun(t, ctx, tmp, "build", "-q", "--var", "n="+strconv.Itoa(i), "-o", "oci:"+filepath.Join(t.TempDir(), "want"))
			if code != 0 {
				t.Fatalf("build: exit %d\n%s", code, stderr)
			}
			if want := lfDigest(stdout); got != want {
				t.Errorf("kill %d at %v: the new tag names %s, the build makes %s", i, at, got, want)
			}
		}
	}
	// The next command on the layout and TMPDIR cleans up after the dead.
	if code, _, stderr := lfRun(t, ctx, tmp, "build", "-q", "--var", "n=old", "-o", "oci:"+out+":after", "-o", "oci-archive:"+filepath.Join(parent, "new.tar")); code != 0 {
		t.Fatalf("the build after the kills: exit %d\n%s", code, stderr)
	}
	if d := lfDebris(parent); len(d) > 0 {
		t.Errorf("debris beside or in the layout after the next build: %v", d)
	}
	if d := lfDebris(tmp); len(d) > 0 {
		t.Errorf("debris in TMPDIR after the next build: %v", d)
	}
	testtool.Require(t, "skopeo")
	lfSkopeo(t, out, "old")
	t.Logf("kill: %d builds killed at random moments, %d finished first", killed, landed)
}

// TestE2ELayoutKillPush: kill -9 during a push to a local docker-registry.
// The old tag stays whole; the new one is absent or whole; TMPDIR is clean
// after the next command.
func TestE2ELayoutKillPush(t *testing.T) {
	t.Parallel()
	reg := regStart(t, "")
	if reg == nil {
		return
	}
	testtool.Require(t, "skopeo")
	kills := lfRounds(3)
	sizes := map[string]int{"old": 1 << 20}
	for i := range kills {
		sizes[strconv.Itoa(i)] = 8 << 20
	}
	ctx := lfContext(t, sizes)
	tmp := t.TempDir()
	repo := reg.host + "/lf"
	code, stdout, stderr := lfRun(t, ctx, tmp, "build", "-q", "--var", "n=old", "-o", repo+":old")
	if code != 0 {
		t.Fatalf("push: exit %d\n%s", code, stderr)
	}
	old := lfDigest(stdout)
	start := time.Now()
	if code, _, stderr := lfRun(t, ctx, tmp, "build", "-q", "--var", "n=0", "-o", repo+":probe"); code != 0 {
		t.Fatalf("push: exit %d\n%s", code, stderr)
	}
	took := time.Since(start)
	seed := uint64(time.Now().UnixNano())
	rng := mrand.New(mrand.NewPCG(seed, 1))
	t.Logf("kill push: a build and push takes %v; seed %d", took, seed)
	inspect := func(ref string) (string, error) {
		b, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref).Output()
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(b)
		return "sha256:" + hex.EncodeToString(sum[:]), nil
	}
	for i := 1; i <= kills; i++ {
		tag := "new" + strconv.Itoa(i)
		cmd := lfCommand(ctx, tmp, "build", "-q", "--var", "n="+strconv.Itoa(i-1), "-o", repo+":"+tag)
		at := time.Duration(rng.Int64N(int64(took) * 11 / 10))
		if finished, ran := lfKillAt(t, cmd, at); finished {
			took = ran
		}
		if got, err := inspect(repo + ":old"); err != nil || got != old {
			t.Errorf("kill %d at %v: the old tag: %s, %v", i, at, got, err)
		}
		// A tag that exists names a whole image: skopeo copies it all.
		if _, err := inspect(repo + ":" + tag); err == nil {
			dst := filepath.Join(t.TempDir(), "copy")
			if out, err := exec.Command("skopeo", "copy", "--src-tls-verify=false", "docker://"+repo+":"+tag, "oci:"+dst+":t").CombinedOutput(); err != nil {
				t.Errorf("kill %d at %v: the new tag does not copy: %v\n%s", i, at, err, out)
			}
		}
	}
	if code, _, stderr := lfRun(t, ctx, tmp, "build", "-q", "--var", "n=old", "-o", repo+":after"); code != 0 {
		t.Fatalf("the push after the kills: exit %d\n%s", code, stderr)
	}
	if d := lfDebris(tmp); len(d) > 0 {
		t.Errorf("debris in TMPDIR after the next build: %v", d)
	}
}

// lfTmpfs mounts a tmpfs of size bytes on a new directory, unmounted when
// the test ends. Where mount is not possible it says so and skips, except
// under CI=true, where it fails.
func lfTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs to make a full disk (%v: %s)", err, strings.TrimSpace(string(out)))
		if testtool.InCI() {
			t.Fatalf("%s; CI=true needs it (run as root)", msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// TestE2ELayoutNoSpace: a full disk under the output, the cache and
// TMPDIR: exit 3, and nothing left (an old layout as it was).
func TestE2ELayoutNoSpace(t *testing.T) {
	t.Parallel()
	ctx := lfContext(t, map[string]int{"small": 32 << 10, "big": 6 << 20})
	const size = 4 << 20
	noSpace := func(t *testing.T, code int, stderr string) {
		t.Helper()
		if code != 3 {
			t.Errorf("exit %d on a full disk, want 3\n%s", code, stderr)
		}
		if !strings.Contains(stderr, "no space left") {
			t.Errorf("stderr does not say the disk is full:\n%s", stderr)
		}
	}
	t.Run("new-layout", func(t *testing.T) {
		fs := lfTmpfs(t, size)
		code, _, stderr := lfRun(t, ctx, t.TempDir(), "build", "-q", "--var", "n=big", "-o", "oci:"+filepath.Join(fs, "a", "out")+":t")
		noSpace(t, code, stderr)
		e2eNothingLeft(t, "the tmpfs", fs)
	})
	t.Run("old-layout", func(t *testing.T) {
		fs := lfTmpfs(t, size)
		out := filepath.Join(fs, "out")
		tmp := t.TempDir()
		if code, _, stderr := lfRun(t, ctx, tmp, "build", "-q", "--var", "n=small", "-o", "oci:"+out+":old"); code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		before := e2eTreeOf(t, fs)
		code, _, stderr := lfRun(t, ctx, tmp, "build", "-q", "--var", "n=big", "-o", "oci:"+out+":new", "-o", "oci:"+out+":old")
		noSpace(t, code, stderr)
		if after := e2eTreeOf(t, fs); after != before {
			t.Errorf("the layout changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("cache", func(t *testing.T) {
		// A fetched url goes through the cache: 6 MB of it fills 4.
		body := make([]byte, 6<<20)
		rand.Read(body)
		srv, _ := e2eServer(t, string(body))
		urlCtx := e2eURLSpec(t, srv.URL+"/file", e2eSHA256Hex(string(body)))
		fs := lfTmpfs(t, size)
		outDir := t.TempDir()
		code, _, stderr := lfRun(t, urlCtx, t.TempDir(), "build", "-q", "--cache-dir", filepath.Join(fs, "cache"), "-o", "oci:"+filepath.Join(outDir, "out"))
		noSpace(t, code, stderr)
		e2eNothingLeft(t, "the output's directory", outDir)
		if d := lfDebris(fs); len(d) > 0 {
			t.Errorf("debris in the cache: %v", d)
		}
	})
	t.Run("tmpdir", func(t *testing.T) {
		fs := lfTmpfs(t, size)
		outDir := t.TempDir()
		code, _, stderr := lfRun(t, ctx, fs, "build", "-q", "--var", "n=big", "-o", "oci:"+filepath.Join(outDir, "out"))
		noSpace(t, code, stderr)
		e2eNothingLeft(t, "the output's directory", outDir)
		e2eNothingLeft(t, "TMPDIR", fs)
	})
}

// e2eTreeOf lists every file under root with its size and sha256.
func e2eTreeOf(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			fmt.Fprintf(&b, "%s/\n", rel)
			return nil
		}
		data, _ := os.ReadFile(p)
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s %d %x\n", rel, len(data), sum[:6])
		return nil
	})
	return b.String()
}

// TestE2ELayoutGCDebris: repro gc removes what killed writers left in and
// beside a layout (owned by a dead process, or by no one, as older
// versions named them) and reports it; a live writer's stays.
func TestE2ELayoutGCDebris(t *testing.T) {
	t.Parallel()
	ctx := lfContext(t, map[string]int{"0": 1 << 10})
	tmp := t.TempDir()
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	if code, _, stderr := lfRun(t, ctx, tmp, "build", "-q", "-o", "oci:"+out+":t"); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	dead := strconv.Itoa(c.Process.Pid)
	live := strconv.Itoa(os.Getpid())
	put := func(rel string) string {
		p := filepath.Join(parent, rel)
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gone := []string{
		put("out/blobs/sha256/.tmp-" + dead + "-1"),
		put("out/blobs/sha256/.tmp-0123456789ab-2"), // an older repro's blob
		put("out/.tmp-index.json-3"),                // an older repro's index.json
		put(".out.tmp-" + dead + "-4"),
	}
	kept := put("out/.tmp-" + live + "-5")
	code, stdout, stderr := lfRun(t, ctx, tmp, "gc", "--json", "oci:"+out, "--keep-days", "36500")
	if code != 0 {
		t.Fatalf("gc: exit %d\n%s", code, stderr)
	}
	var rep struct{ Debris []string }
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("gc --json: %v\n%s", err, stdout)
	}
	if len(rep.Debris) != len(gone) {
		t.Errorf("gc reports debris %q, want the %d of %q", rep.Debris, len(gone), gone)
	}
	for _, p := range gone {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("gc left %s", p)
		}
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("gc removed a live writer's file: %v", err)
	}
	if _, err := lfResolve(out, "t"); err != nil {
		t.Error(err)
	}
}
