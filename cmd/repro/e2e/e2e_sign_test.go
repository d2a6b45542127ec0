package e2e

// End-to-end tests of signing: repro signs, the real cosign CLI (v2.6.5)
// verifies, and the other way round, on OCI layouts and on a
// docker-registry of the test's own; signing and verifying with a key run
// in a network namespace with no network at all (unshare -n).

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/testtool"
	"github.com/reprobuild/repro/pkg/attest"
)

// cosignTrustedRoot is a trusted root with nothing in it: with --key and
// --insecure-ignore-tlog, cosign needs none, and without one it stalls
// trying to fetch Sigstore's from the internet.
const cosignTrustedRoot = `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`

// signEnv is what the signing tests share: the examples, key pairs and a
// trusted root file.
type signEnv struct {
	examples    string
	dir         string
	trustedRoot string
	// ed25519 and ecdsa key pairs made by repro keygen (password "pw"),
	// and a pair made by cosign generate-key-pair.
	edKey, edPub, ecKey, ecPub, cosignKey, cosignPub string
}

func newSignEnv(t *testing.T, needCosign bool) *signEnv {
	t.Helper()
	if needCosign && testtool.Require(t, "cosign") == nil {
		return nil
	}
	e := &signEnv{examples: copyExamples(t, false), dir: t.TempDir()}
	e.trustedRoot = filepath.Join(e.dir, "trusted-root.json")
	if err := os.WriteFile(e.trustedRoot, []byte(cosignTrustedRoot), 0o644); err != nil {
		t.Fatal(err)
	}
	pw := invocation{dir: e.dir, env: []string{"COSIGN_PASSWORD=pw"}}
	for _, k := range []struct {
		typ        string
		key, pub   *string
		prefixName string
	}{{"ed25519", &e.edKey, &e.edPub, "ed"}, {"ecdsa", &e.ecKey, &e.ecPub, "ec"}} {
		prefix := filepath.Join(e.dir, k.prefixName)
		if r := pw.run(t, "keygen", "-q", "--type", k.typ, "--out", prefix); r.code != 0 {
			t.Fatalf("repro keygen: exit %d\n%s", r.code, r.stderr)
		}
		*k.key, *k.pub = prefix+".key", prefix+".pub"
		fi, err := os.Stat(*k.key)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", *k.key, err, fi.Mode())
		}
	}
	if needCosign {
		prefix := filepath.Join(e.dir, "cosign")
		runCosign(t, e.dir, []string{"COSIGN_PASSWORD=pw"}, 0, "generate-key-pair", "--output-key-prefix", prefix)
		e.cosignKey, e.cosignPub = prefix+".key", prefix+".pub"
	}
	return e
}

// runCosign runs the cosign CLI in dir. With want 0 it fails the test
// unless cosign exits 0; with want 1, unless cosign refuses: a non-zero
// exit (cosign uses several) saying "no matching". It returns stdout and
// stderr.
func runCosign(t *testing.T, dir string, env []string, want int, args ...string) (string, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "cosign", args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running cosign: %v", err)
	}
	refused := code != 0 && strings.Contains(stderr.String(), "no matching")
	if (want == 0 && code != 0) || (want != 0 && !refused) {
		t.Fatalf("cosign %s: exit %d, want %s\n%s%s", strings.Join(args, " "), code, map[bool]string{true: "0", false: "a refusal"}[want == 0], stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// cosignVerifyArgs are the flags that make cosign verify with a key only,
// offline.
func (e *signEnv) cosignVerifyArgs(key string) []string {
	return []string{"--key", key, "--insecure-ignore-tlog=true", "--trusted-root", e.trustedRoot}
}

// buildAndSign builds the go-server example into the layout dir (tag v1)
// and signs it with key, attaching the SBOM and the provenance.
func (e *signEnv) buildAndSign(t *testing.T, dir, key string) string {
	t.Helper()
	spec := filepath.Join(e.examples, "go-server", "repro.yaml")
	r := repro(t, e.examples, "build", "-q", "--offline", "--version", e2eVersion, "-f", spec, "-o", "oci:"+dir+":v1")
	digest := lastLine(r.stdout)
	s := invocation{dir: e.examples, env: []string{"COSIGN_PASSWORD=pw"}}.run(t, "sign", "-q", "oci:"+dir+":v1", "--key", key,
		"--attest", "sbom", "--attest", "provenance", "-f", spec, "--version", e2eVersion, "--offline")
	if s.code != 0 {
		t.Fatalf("repro sign: exit %d\n%s", s.code, s.stderr)
	}
	if got := lastLine(s.stdout); got != digest {
		t.Fatalf("repro sign printed %s; the build %s", got, digest)
	}
	return digest
}

// TestE2ESignLayout: a layout that repro signed is accepted by cosign
// verify --local-image and verify-attestation (slsaprovenance1, spdxjson),
// and by repro verify-signature; wrong keys are refused by both; the
// image's digest and tag survive signing (skopeo reads the tag); and two
// Ed25519-signed layouts of one build are byte-identical.
func TestE2ESignLayout(t *testing.T) {
	t.Parallel()
	e := newSignEnv(t, true)
	if e == nil {
		return
	}
	layout := filepath.Join(e.dir, "first", "layout")
	digest := e.buildAndSign(t, layout, e.edKey)

	// The layout: the image's entry carries cosign's kind and its tag.
	var idx ocispec.Index
	e2eUnmarshal(t, signReadFile(t, filepath.Join(layout, "index.json")), &idx)
	kinds := map[string]string{}
	for _, d := range idx.Manifests {
		kinds[d.Annotations["kind"]] = string(d.Digest)
	}
	if len(idx.Manifests) != 3 || kinds["dev.cosignproject.cosign/image"] != digest || kinds["dev.cosignproject.cosign/sigs"] == "" || kinds["dev.cosignproject.cosign/atts"] == "" {
		t.Fatalf("index.json entries: %+v", idx.Manifests)
	}
	if got := e2eTagged(t, layout, "v1").Digest; string(got) != digest {
		t.Fatalf("tag v1 names %s after signing, want %s", got, digest)
	}

	t.Run("cosign-verify", func(t *testing.T) {
		out, _ := runCosign(t, e.dir, nil, 0, append([]string{"verify", "--local-image", layout}, e.cosignVerifyArgs(e.edPub)...)...)
		if !strings.Contains(out, digest) {
			t.Errorf("cosign verify printed no payload naming %s:\n%s", digest, out)
		}
		runCosign(t, e.dir, nil, 1, append([]string{"verify", "--local-image", layout}, e.cosignVerifyArgs(e.ecPub)...)...)
	})
	for _, typ := range []string{"slsaprovenance1", "spdxjson"} {
		t.Run("cosign-verify-attestation/"+typ, func(t *testing.T) {
			out, _ := runCosign(t, e.dir, nil, 0, append([]string{"verify-attestation", "--type", typ, "--local-image", layout}, e.cosignVerifyArgs(e.edPub)...)...)
			if !strings.Contains(out, "payload") {
				t.Errorf("cosign verify-attestation printed no envelope:\n%s", out)
			}
			runCosign(t, e.dir, nil, 1, append([]string{"verify-attestation", "--type", typ, "--local-image", layout}, e.cosignVerifyArgs(e.cosignPub)...)...)
		})
	}
	t.Run("repro-verify-signature", func(t *testing.T) {
		r := repro(t, e.dir, "verify-signature", "oci:"+layout+":v1", "--key", e.edPub, "--require", "provenance", "--require", "sbom")
		if !strings.Contains(r.stdout, "verified "+digest) {
			t.Errorf("stdout %q", r.stdout)
		}
		bad := invocation{dir: e.dir}.run(t, "verify-signature", "oci:"+layout+":v1", "--key", e.ecPub)
		if bad.code != 1 || !strings.Contains(bad.stderr, "not signed with this key") {
			t.Errorf("wrong key: exit %d\n%s", bad.code, bad.stderr)
		}
	})
	t.Run("sbom-matches-attestation", func(t *testing.T) {
		// repro sbom prints the very document the attestation carries.
		// The attached SBOM names the image as the spec does.
		r := repro(t, e.dir, "sbom", "oci:"+layout+":v1", "--name", "go-server")
		attached := layoutPredicate(t, layout, "https://spdx.dev/Document")
		if strings.TrimSpace(r.stdout) != string(attached) {
			t.Errorf("repro sbom and the attached SBOM differ:\n%s\n%s", r.stdout, attached)
		}
		for _, want := range []string{`"spdxVersion":"SPDX-2.3"`, `"fileName":"/app/server"`, `"created":"2023-11-14T22:13:20Z"`, "pkg:golang/stdlib@"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("the SBOM lacks %s", want)
			}
		}
		// -o writes the same document, by rename (nothing left beside it).
		out := filepath.Join(t.TempDir(), "sbom.json")
		repro(t, e.dir, "sbom", "oci:"+layout+":v1", "--name", "go-server", "-o", out)
		if written, err := os.ReadFile(out); err != nil || string(written) != r.stdout {
			t.Errorf("sbom -o: %v\n%s", err, written)
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".tmp-*")); len(left) > 0 {
			t.Errorf("sbom -o left %v", left)
		}
		cdx := repro(t, e.dir, "sbom", "oci:"+layout+":v1", "--name", "go-server", "--format", "cyclonedx-json")
		var bom struct{ BOMFormat, SpecVersion string }
		e2eUnmarshal(t, []byte(cdx.stdout), &bom)
		if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.5" {
			t.Errorf("cyclonedx: %+v", bom)
		}
		prov := layoutPredicate(t, layout, "https://slsa.dev/provenance/v1")
		for _, want := range []string{`"version":"` + e2eVersion + `"`, `"epoch":1700000000`, `"formatVersion":"repro-layer/`, `"platforms":["linux/amd64"]`} {
			if !bytes.Contains(prov, []byte(want)) {
				t.Errorf("the provenance lacks %s:\n%s", want, prov)
			}
		}
	})
	t.Run("skopeo-reads-the-tag", func(t *testing.T) {
		if testtool.Require(t, "skopeo") == nil {
			return
		}
		var in struct{ Digest string }
		e2eUnmarshal(t, []byte(testtool.Run(t, "skopeo", "inspect", "oci:"+layout+":v1")), &in)
		if in.Digest != digest {
			t.Errorf("skopeo inspect: %s, want %s", in.Digest, digest)
		}
	})
	t.Run("reproducible", func(t *testing.T) {
		again := filepath.Join(e.dir, "second", "layout")
		if d := e.buildAndSign(t, again, e.edKey); d != digest {
			t.Fatalf("rebuilt %s, first %s", d, digest)
		}
		compareTrees(t, layout, again) // perturb_test.go: every file, byte for byte
	})
}

// layoutPredicate returns the predicate of the attestation of type
// predicateType in a signed layout (without verifying it).
func layoutPredicate(t *testing.T, layout, predicateType string) []byte {
	t.Helper()
	var idx ocispec.Index
	e2eUnmarshal(t, signReadFile(t, filepath.Join(layout, "index.json")), &idx)
	for _, d := range idx.Manifests {
		if d.Annotations["kind"] != "dev.cosignproject.cosign/atts" {
			continue
		}
		var m ocispec.Manifest
		e2eUnmarshal(t, e2eBlob(t, layout, string(d.Digest)), &m)
		for _, l := range m.Layers {
			if l.Annotations["predicateType"] != predicateType {
				continue
			}
			var env struct{ Payload string }
			e2eUnmarshal(t, e2eBlob(t, layout, string(l.Digest)), &env)
			raw, err := base64.StdEncoding.DecodeString(env.Payload)
			if err != nil {
				t.Fatal(err)
			}
			var st struct{ Predicate json.RawMessage }
			e2eUnmarshal(t, raw, &st)
			return st.Predicate
		}
	}
	t.Fatalf("%s holds no %s attestation", layout, predicateType)
	return nil
}

func signReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestE2ESignRegistry: on a docker-registry, cosign accepts what repro
// signed and attested, repro accepts what cosign signed and attested
// (also once cosign save has put it in a layout), and both refuse the
// other's wrong keys.
func TestE2ESignRegistry(t *testing.T) {
	t.Parallel()
	e := newSignEnv(t, true)
	if e == nil {
		return
	}
	reg := regStart(t, "")
	if reg == nil {
		return
	}
	spec := filepath.Join(e.examples, "go-server", "repro.yaml")
	pw := invocation{dir: e.examples, env: []string{"COSIGN_PASSWORD=pw"}}

	t.Run("cosign-accepts-repro", func(t *testing.T) {
		ref := reg.host + "/signed/by-repro:v1"
		digest := lastLine(repro(t, e.examples, "build", "-q", "--offline", "--version", e2eVersion, "-f", spec, "-o", ref).stdout)
		if r := pw.run(t, "sign", "-q", ref, "--key", e.ecKey, "--attest", "sbom", "--attest", "provenance", "-f", spec, "--version", e2eVersion, "--offline"); r.code != 0 {
			t.Fatalf("repro sign: exit %d\n%s", r.code, r.stderr)
		}
		out, _ := runCosign(t, e.dir, nil, 0, append([]string{"verify", ref}, e.cosignVerifyArgs(e.ecPub)...)...)
		if !strings.Contains(out, digest) || !strings.Contains(out, reg.host+"/signed/by-repro") {
			t.Errorf("cosign verify: %s", out)
		}
		for _, typ := range []string{"slsaprovenance1", "spdxjson"} {
			runCosign(t, e.dir, nil, 0, append([]string{"verify-attestation", "--type", typ, ref}, e.cosignVerifyArgs(e.ecPub)...)...)
			runCosign(t, e.dir, nil, 1, append([]string{"verify-attestation", "--type", typ, ref}, e.cosignVerifyArgs(e.edPub)...)...)
		}
		runCosign(t, e.dir, nil, 1, append([]string{"verify", ref}, e.cosignVerifyArgs(e.cosignPub)...)...)
		// The tag still names the image: signing wrote only sha256-<hex>.sig/.att.
		r := repro(t, e.dir, "verify-signature", ref, "--key", e.ecPub, "--require", "provenance")
		if !strings.Contains(r.stdout, digest) {
			t.Errorf("verify-signature: %s", r.stdout)
		}
	})

	t.Run("repro-accepts-cosign", func(t *testing.T) {
		ref := reg.host + "/signed/by-cosign:v1"
		digest := lastLine(repro(t, e.examples, "build", "-q", "--offline", "--version", e2eVersion, "-f", spec, "-o", ref).stdout)
		runCosign(t, e.dir, []string{"COSIGN_PASSWORD=pw"}, 0, "sign", "--tlog-upload=false", "-y", "--key", e.cosignKey, ref)
		predicate := filepath.Join(e.dir, "predicate.json")
		if err := os.WriteFile(predicate, []byte(`{"buildDefinition":{"buildType":"https://example.com/t","externalParameters":{}},"runDetails":{"builder":{"id":"https://example.com/b"}}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		runCosign(t, e.dir, []string{"COSIGN_PASSWORD=pw"}, 0, "attest", "--tlog-upload=false", "-y", "--key", e.cosignKey, "--type", "slsaprovenance1", "--predicate", predicate, ref)

		r := repro(t, e.dir, "verify-signature", ref, "--key", e.cosignPub, "--require", "provenance")
		if !strings.Contains(r.stdout, "verified "+digest) {
			t.Errorf("verify-signature: %q", r.stdout)
		}
		for _, key := range []string{e.edPub, e.ecPub} {
			bad := invocation{dir: e.dir}.run(t, "verify-signature", ref, "--key", key)
			if bad.code != 1 || !strings.Contains(bad.stderr, "not signed with this key") {
				t.Errorf("wrong key %s: exit %d\n%s", filepath.Base(key), bad.code, bad.stderr)
			}
		}

		// cosign save writes its layout format: repro reads the signatures
		// from it by cosign's kinds.
		saved := filepath.Join(e.dir, "saved")
		runCosign(t, e.dir, nil, 0, "save", "--dir", saved, ref)
		r = repro(t, e.dir, "verify-signature", "oci:"+saved+"@"+digest, "--key", e.cosignPub, "--require", "provenance")
		if !strings.Contains(r.stdout, "verified "+digest) {
			t.Errorf("verify-signature of cosign save's layout: %q", r.stdout)
		}
	})
}

// TestE2ESignOffline: with a key, keygen, signing and verifying touch no
// network: they run in a network namespace that has none (unshare -n).
func TestE2ESignOffline(t *testing.T) {
	t.Parallel()
	tools := testtool.Require(t, "unshare")
	if tools == nil {
		return
	}
	if out, err := exec.Command(tools["unshare"], "-n", "true").CombinedOutput(); err != nil {
		// unshare -n needs CAP_SYS_ADMIN (CI runs as root).
		if testtool.InCI() {
			t.Fatalf("unshare -n: %v\n%s", err, out)
		}
		t.Skipf("unshare -n is not permitted here: %v %s", err, out)
	}
	e := newSignEnv(t, false)
	layout := filepath.Join(e.dir, "layout")
	spec := filepath.Join(e.examples, "go-server", "repro.yaml")
	digest := lastLine(repro(t, e.examples, "build", "-q", "--offline", "--version", e2eVersion, "-f", spec, "-o", "oci:"+layout+":v1").stdout)
	offline := func(args ...string) result {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), tools["unshare"], append([]string{"-n", reproBin}, args...)...)
		cmd.Dir = e.dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + e.dir, "TMPDIR=" + os.TempDir(), "COSIGN_PASSWORD=pw"}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		r := result{stdout: stdout.String(), stderr: stderr.String()}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := offline("keygen", "-q", "--out", filepath.Join(e.dir, "offline")); r.code != 0 {
		t.Fatalf("offline keygen: exit %d\n%s", r.code, r.stderr)
	}
	for _, key := range []string{e.edKey, e.ecKey, filepath.Join(e.dir, "offline.key")} {
		if r := offline("sign", "-q", "oci:"+layout+":v1", "--key", key, "--attest", "sbom"); r.code != 0 || lastLine(r.stdout) != digest {
			t.Fatalf("offline sign with %s: exit %d\n%s%s", filepath.Base(key), r.code, r.stdout, r.stderr)
		}
		pub := strings.TrimSuffix(key, ".key") + ".pub"
		if r := offline("verify-signature", "oci:"+layout+":v1", "--key", pub, "--require", "sbom"); r.code != 0 {
			t.Fatalf("offline verify-signature with %s: exit %d\n%s", filepath.Base(pub), r.code, r.stderr)
		}
	}
	if testtool.Require(t, "cosign") == nil {
		return
	}
	cmd := exec.CommandContext(t.Context(), tools["unshare"], append([]string{"-n", "cosign", "verify", "--local-image", layout}, e.cosignVerifyArgs(filepath.Join(e.dir, "offline.pub"))...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + e.dir}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("offline cosign verify --local-image: %v\n%s", err, out)
	}
}

// TestE2ESignBuilt drives signBuilt, what build --sign calls once the
// outputs are written: a layout and a registry output are signed with the
// SBOM and provenance attestations (cosign accepts both), an archive
// output is skipped, and two builds signed with an Ed25519 key give
// byte-identical layouts.
func TestE2ESignBuilt(t *testing.T) {
	t.Parallel()
	e := newSignEnv(t, true)
	if e == nil {
		return
	}
	reg := regStart(t, "")
	if reg == nil {
		return
	}
	spec := filepath.Join(e.examples, "go-server", "repro.yaml")
	buildSigned := func(outs ...string) string {
		t.Helper()
		args := []string{"build", "-q", "--offline", "--version", e2eVersion, "--compression", "gzip", "-f", spec, "--sign", "--key", e.edKey}
		for _, o := range outs {
			args = append(args, "-o", o)
		}
		r := invocation{dir: t.TempDir(), env: []string{"COSIGN_PASSWORD=pw"}}.run(t, args...)
		if r.code != 0 {
			t.Fatalf("repro %q: exit %d\n%s", args, r.code, r.stderr)
		}
		return lastLine(r.stdout)
	}
	first, second := filepath.Join(e.dir, "built1", "out"), filepath.Join(e.dir, "built2", "out")
	regRef := reg.host + "/built/go-server:v1"
	d1 := buildSigned("oci:"+first+":v1", regRef, "oci-archive:"+filepath.Join(e.dir, "a.tar"))
	d2 := buildSigned("oci:" + second + ":v1")
	if d1 != d2 {
		t.Fatalf("two builds: %s and %s", d1, d2)
	}
	compareTrees(t, first, second)
	for _, img := range [][]string{{"--local-image", first}, {regRef}} {
		out, _ := runCosign(t, e.dir, nil, 0, append(append([]string{"verify"}, img...), e.cosignVerifyArgs(e.edPub)...)...)
		if !strings.Contains(out, d1) {
			t.Errorf("cosign verify %v: %s", img, out)
		}
		for _, typ := range []string{"slsaprovenance1", "spdxjson"} {
			runCosign(t, e.dir, nil, 0, append(append([]string{"verify-attestation", "--type", typ}, img...), e.cosignVerifyArgs(e.edPub)...)...)
		}
	}
	// The provenance holds what a rebuild needs.
	p := layoutPredicate(t, first, "https://slsa.dev/provenance/v1")
	prov, err := attest.ParseProvenance(p)
	if err != nil {
		t.Fatal(err)
	}
	ep := prov.BuildDefinition.ExternalParameters
	if ep.Name != "go-server" || ep.Version != e2eVersion || ep.Spec.URI != "repro.yaml" || len(ep.Platforms) != 1 ||
		prov.BuildDefinition.InternalParameters.Epoch != e2eEpoch || prov.Manifests()["linux/amd64"] != d1 {
		t.Errorf("provenance: %s", p)
	}
	// An archive output holds no signature: signBuilt needs another output.
	r := invocation{dir: t.TempDir(), env: []string{"COSIGN_PASSWORD=pw"}}.run(t, "build", "-q", "--offline", "--version", e2eVersion,
		"-f", spec, "-o", "oci-archive:"+filepath.Join(e.dir, "b.tar"), "--sign", "--key", e.edKey)
	if r.code != 2 {
		t.Errorf("build --sign to an archive only: exit %d, want 2\n%s", r.code, r.stderr)
	}
}

// TestE2EBuildSign runs repro build --sign, once build has the flags
// (see signBuilt for the wiring).
func TestE2EBuildSign(t *testing.T) {
	t.Parallel()
	e := newSignEnv(t, true)
	if e == nil {
		return
	}
	spec := filepath.Join(e.examples, "go-server", "repro.yaml")
	layout := filepath.Join(e.dir, "layout")
	r := invocation{dir: e.examples, env: []string{"COSIGN_PASSWORD=pw"}}.run(t, "build", "-q", "--offline", "--version", e2eVersion,
		"-f", spec, "-o", "oci:"+layout+":v1", "--sign", "--key", e.edKey)
	if r.code != 0 {
		t.Fatalf("repro build --sign: exit %d\n%s", r.code, r.stderr)
	}
	digest := lastLine(r.stdout)
	out, _ := runCosign(t, e.dir, nil, 0, append([]string{"verify", "--local-image", layout}, e.cosignVerifyArgs(e.edPub)...)...)
	if !strings.Contains(out, digest) {
		t.Errorf("cosign verify: %s", out)
	}
	for _, typ := range []string{"slsaprovenance1", "spdxjson"} {
		runCosign(t, e.dir, nil, 0, append([]string{"verify-attestation", "--type", typ, "--local-image", layout}, e.cosignVerifyArgs(e.edPub)...)...)
	}
	// verify --key checks the signature and attestations, and takes the
	// version (and the rest) from the verified provenance: no hints given.
	v := invocation{dir: e.examples}.run(t, "verify", "--offline", "-f", spec, "--against", "oci:"+layout+":v1", "--key", e.edPub)
	if v.code != 0 || !strings.Contains(v.stdout, "verified") {
		t.Errorf("verify --key: exit %d\n%s\n%s", v.code, v.stdout, v.stderr)
	}
	// Without the provenance's version the rebuild differs, and says where.
	v = invocation{dir: e.examples}.run(t, "verify", "--offline", "-f", spec, "--against", "oci:"+layout+":v1")
	if v.code != 1 || !strings.Contains(v.stdout, "annotations.org.opencontainers.image.version") {
		t.Errorf("verify without --key: exit %d\n%s", v.code, v.stdout)
	}
	// --sbom=false --provenance=false: a signature and no attestation.
	bare := filepath.Join(e.dir, "bare")
	r = invocation{dir: e.examples, env: []string{"COSIGN_PASSWORD=pw"}}.run(t, "build", "-q", "--offline", "--version", e2eVersion,
		"-f", spec, "-o", "oci:"+bare+":v1", "--sign", "--key", e.edKey, "--sbom=false", "--provenance=false")
	if r.code != 0 {
		t.Fatalf("repro build --sign --sbom=false --provenance=false: exit %d\n%s", r.code, r.stderr)
	}
	var idx ocispec.Index
	e2eUnmarshal(t, signReadFile(t, filepath.Join(bare, "index.json")), &idx)
	if len(idx.Manifests) != 2 {
		t.Errorf("index.json: %d entries, want the image and its signatures", len(idx.Manifests))
	}
}
