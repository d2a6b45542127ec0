package sign_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	cempty "github.com/sigstore/cosign/v2/pkg/oci/empty"
	cmutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	"github.com/sigstore/cosign/v2/pkg/oci/static"

	"github.com/reprobuild/repro/pkg/attest"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/output"
	"github.com/reprobuild/repro/pkg/sign"
)

func ociImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
}

func ociIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.IndexMediaType(idx, types.OCIImageIndex)
}

// keyPair makes a key pair of type kt as plain PKCS #8 PEM, which loads
// without scrypt (cosign's encrypted keys take a second each to decrypt,
// ten under -race; TestKeys covers them). password names the pair: the
// same type and password give the same keys within a test binary.
func keyPair(t *testing.T, kt sign.KeyType, password string) (*sign.Signer, []byte, []byte) {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	id := string(kt) + "/" + password
	if k, ok := keys[id]; ok {
		return k.s, k.priv, k.pub
	}
	var pk any
	switch kt {
	case sign.Ed25519:
		_, pk, _ = ed25519.GenerateKey(rand.Reader)
	default:
		pk, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	der, err := x509.MarshalPKCS8PrivateKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	s, err := sign.LoadSigner(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys[id] = testKey{s, priv, s.PublicKey()}
	return s, priv, s.PublicKey()
}

type testKey struct {
	s         *sign.Signer
	priv, pub []byte
}

var (
	keysMu sync.Mutex
	keys   = map[string]testKey{}
)

func parse(t *testing.T, s string) imageref.Reference {
	t.Helper()
	r, err := imageref.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func write(t *testing.T, ref imageref.Reference, a imageref.Artifact) {
	t.Helper()
	if err := output.Write(context.Background(), ref, a, output.Options{}); err != nil {
		t.Fatal(err)
	}
}

var (
	provenance = []byte(`{"buildDefinition":{"buildType":"` + attest.BuildType + `","externalParameters":{"spec":{"uri":"repro.yaml","digest":{"sha256":"00"}},"name":"x","vars":{},"platforms":["linux/amd64"],"version":"1.0.0"},"internalParameters":{"epoch":1,"epochSource":"spec","formatVersion":"repro-layer/1","compression":{"algorithm":"gzip","settings":"s"}}},"runDetails":{"builder":{"id":"https://github.com/reprobuild/repro@devel"},"metadata":{"startedOn":"1970-01-01T00:00:01Z","finishedOn":"1970-01-01T00:00:01Z"}}}`)
	sbom       = []byte(`{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT"}`)
	both       = []sign.Attestation{{PredicateType: attest.SPDXType, Predicate: sbom}, {PredicateType: attest.ProvenanceType, Predicate: provenance}}
)

func registryHost(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func tags(t *testing.T, repo string) []string {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := remote.List(r)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestRegistry signs an image in an in-memory registry, with both
// attestations, and verifies it; the signature lives under cosign's tags
// and the image's digest is unchanged.
func TestRegistry(t *testing.T) {
	ctx := context.Background()
	host := registryHost(t)
	ref := parse(t, host+"/team/app:v1")
	img := ociImage(t)
	want, _ := img.Digest()
	write(t, ref, imageref.Artifact{Image: img})
	s, _, pub := keyPair(t, sign.ECDSA, "secret")

	res, err := sign.Sign(ctx, ref, s, sign.Options{Attestations: both, ExpectDigest: want.String()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != want {
		t.Fatalf("signed %s, want %s", res.Digest, want)
	}
	hexTag := "sha256-" + want.Hex
	got := strings.Join(tags(t, host+"/team/app"), " ")
	for _, w := range []string{"v1", hexTag + ".sig", hexTag + ".att"} {
		if !strings.Contains(got, w) {
			t.Errorf("tags %q lack %s", got, w)
		}
	}
	a, err := imageref.Open(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if a.Descriptor.Digest != want {
		t.Fatalf("signing changed the tag's digest to %s", a.Descriptor.Digest)
	}

	rep, err := sign.VerifyImage(ctx, ref, pub, sign.VerifyOptions{Require: []string{attest.ProvenanceType, attest.SPDXType}})
	if err != nil {
		t.Fatalf("verify: %v\n%+v", err, rep)
	}
	if len(rep.Signatures) != 1 || len(rep.Attestations) != 2 {
		t.Fatalf("report: %+v", rep)
	}
	if rep.Signatures[0].Identity != host+"/team/app" || rep.Signatures[0].Named != want.String() {
		t.Errorf("signature names %s as %s", rep.Signatures[0].Named, rep.Signatures[0].Identity)
	}
	p, err := rep.Provenance()
	if err != nil {
		t.Fatal(err)
	}
	if p.BuildDefinition.ExternalParameters.Version != "1.0.0" {
		t.Errorf("provenance read back: %+v", p.BuildDefinition.ExternalParameters)
	}

	// A wrong key fails, saying so, with exit code 1.
	_, _, other := keyPair(t, sign.Ed25519, "")
	rep, err = sign.VerifyImage(ctx, ref, other, sign.VerifyOptions{})
	if err == nil || fault.KindOf(err) != fault.CheckFailed {
		t.Fatalf("wrong key: err = %v (%v)", err, fault.KindOf(err))
	}
	if !strings.Contains(err.Error(), "not signed with this key") || !strings.Contains(err.Error(), "attestation 0") {
		t.Errorf("wrong key: %v", err)
	}
	if rep == nil || rep.OK() {
		t.Errorf("wrong key: report %+v", rep)
	}
}

// TestLayout signs an image in an OCI layout: the image's entry gains
// cosign's kind annotation beside its tag, the signatures and attestations
// are entries of their own kinds, and the manifest is untouched.
func TestLayout(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	ref := parse(t, "oci:"+dir+":v1")
	img := ociImage(t)
	want, _ := img.Digest()
	write(t, ref, imageref.Artifact{Image: img})
	rawBefore, _ := img.RawManifest()
	s, _, pub := keyPair(t, sign.Ed25519, "")

	if _, err := sign.Sign(ctx, ref, s, sign.Options{Attestations: both}); err != nil {
		t.Fatal(err)
	}
	idx := readIndex(t, dir)
	if len(idx.Manifests) != 3 {
		t.Fatalf("index.json has %d entries, want 3: %+v", len(idx.Manifests), idx.Manifests)
	}
	wantAnn := []map[string]string{
		{"kind": "dev.cosignproject.cosign/image", ocispec.AnnotationRefName: "v1"},
		{"kind": "dev.cosignproject.cosign/sigs", ocispec.AnnotationRefName: "sha256-" + want.Hex + ".sig"},
		{"kind": "dev.cosignproject.cosign/atts", ocispec.AnnotationRefName: "sha256-" + want.Hex + ".att"},
	}
	for i, w := range wantAnn {
		if !equalMaps(idx.Manifests[i].Annotations, w) {
			t.Errorf("entry %d annotations %v, want %v", i, idx.Manifests[i].Annotations, w)
		}
	}
	if string(idx.Manifests[0].Digest) != want.String() {
		t.Errorf("the image entry names %s, want %s", idx.Manifests[0].Digest, want)
	}
	rawAfter, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", want.Hex))
	if err != nil || !bytes.Equal(rawAfter, rawBefore) {
		t.Errorf("the manifest blob changed (%v)", err)
	}
	if _, err := sign.VerifyImage(ctx, ref, pub, sign.VerifyOptions{Require: []string{attest.ProvenanceType}}); err != nil {
		t.Fatal(err)
	}
	_, _, other := keyPair(t, sign.ECDSA, "x")
	if _, err := sign.VerifyImage(ctx, ref, other, sign.VerifyOptions{}); fault.KindOf(err) != fault.CheckFailed {
		t.Fatalf("wrong key: %v", err)
	}
}

// TestLayoutIndex signs an index: its entry is of cosign's imageIndex kind.
func TestLayoutIndex(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	ref := parse(t, "oci:"+dir+":multi")
	ii := ociIndex(t)
	write(t, ref, imageref.Artifact{Index: ii})
	s, _, pub := keyPair(t, sign.Ed25519, "")
	if _, err := sign.Sign(ctx, ref, s, sign.Options{}); err != nil {
		t.Fatal(err)
	}
	idx := readIndex(t, dir)
	if k := idx.Manifests[0].Annotations["kind"]; k != "dev.cosignproject.cosign/imageIndex" {
		t.Errorf("index entry kind %q", k)
	}
	if len(idx.Manifests) != 2 {
		t.Errorf("without attestations index.json holds the index and its signatures; got %d entries", len(idx.Manifests))
	}
	if _, err := sign.VerifyImage(ctx, ref, pub, sign.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestLayoutDeterministic: the same image signed with the same Ed25519 key
// gives byte-identical layouts; ECDSA signatures differ from one signing
// to the next.
func TestLayoutDeterministic(t *testing.T) {
	ctx := context.Background()
	img := ociImage(t)
	ed, _, _ := keyPair(t, sign.Ed25519, "")
	ec, _, _ := keyPair(t, sign.ECDSA, "")
	signed := func(s *sign.Signer) string {
		dir := filepath.Join(t.TempDir(), "layout")
		ref := parse(t, "oci:"+dir+":v1")
		write(t, ref, imageref.Artifact{Image: img})
		if _, err := sign.Sign(ctx, ref, s, sign.Options{Attestations: both}); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	a, b := signed(ed), signed(ed)
	if diff := compareTrees(t, a, b); diff != "" {
		t.Errorf("two Ed25519-signed layouts differ: %s", diff)
	}
	if !ed.Deterministic() || ec.Deterministic() {
		t.Errorf("Deterministic: ed25519 %v, ecdsa %v", ed.Deterministic(), ec.Deterministic())
	}
	c, d := signed(ec), signed(ec)
	if compareTrees(t, c, d) == "" {
		t.Errorf("two ECDSA-signed layouts are identical: ECDSA signatures should be randomized")
	}
}

// TestResign: signing again with an Ed25519 key adds nothing; with an
// ECDSA key it adds a second signature. Attestations replace those of the
// same predicate type.
func TestResign(t *testing.T) {
	ctx := context.Background()
	host := registryHost(t)
	for _, kt := range []sign.KeyType{sign.Ed25519, sign.ECDSA} {
		t.Run(string(kt), func(t *testing.T) {
			ref := parse(t, host+"/re/"+string(kt)+":v1")
			write(t, ref, imageref.Artifact{Image: ociImage(t)})
			s, _, pub := keyPair(t, kt, "")
			for i := 0; i < 2; i++ {
				if _, err := sign.Sign(ctx, ref, s, sign.Options{Attestations: both}); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := sign.VerifyImage(ctx, ref, pub, sign.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wantSigs := map[sign.KeyType]int{sign.Ed25519: 1, sign.ECDSA: 2}[kt]
			if len(rep.Signatures) != wantSigs || len(rep.Attestations) != 2 {
				t.Errorf("%d signatures (want %d), %d attestations (want 2)", len(rep.Signatures), wantSigs, len(rep.Attestations))
			}
		})
	}
}

// TestSeveralImagesInLayout: cosign's kinds stay with the image signed
// last; the other keeps its signatures under its sha256-<hex>.sig tag,
// where repro still verifies them.
func TestSeveralImagesInLayout(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	a, b := parse(t, "oci:"+dir+":a"), parse(t, "oci:"+dir+":b")
	write(t, a, imageref.Artifact{Image: ociImage(t)})
	write(t, b, imageref.Artifact{Image: ociImage(t)})
	s, _, pub := keyPair(t, sign.Ed25519, "")
	for _, r := range []imageref.Reference{a, b} {
		if _, err := sign.Sign(ctx, r, s, sign.Options{Attestations: both}); err != nil {
			t.Fatal(err)
		}
	}
	kinds := map[string]string{}
	for _, d := range readIndex(t, dir).Manifests {
		if k, ok := d.Annotations["kind"]; ok {
			if other, dup := kinds[k]; dup {
				t.Errorf("two entries of kind %s: %s and %s", k, other, d.Annotations[ocispec.AnnotationRefName])
			}
			kinds[k] = d.Annotations[ocispec.AnnotationRefName]
		}
	}
	if kinds["dev.cosignproject.cosign/image"] != "b" {
		t.Errorf("kinds: %v; want the image kind on b", kinds)
	}
	for _, r := range []imageref.Reference{a, b} {
		if _, err := sign.VerifyImage(ctx, r, pub, sign.VerifyOptions{Require: []string{attest.SPDXType}}); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
}

// TestUnsigned: an image without signatures fails verification.
func TestUnsigned(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	ref := parse(t, "oci:"+dir+":v1")
	write(t, ref, imageref.Artifact{Image: ociImage(t)})
	_, _, pub := keyPair(t, sign.Ed25519, "")
	_, err := sign.VerifyImage(ctx, ref, pub, sign.VerifyOptions{})
	if fault.KindOf(err) != fault.CheckFailed || !strings.Contains(err.Error(), "no cosign signature") {
		t.Fatalf("unsigned: %v", err)
	}
}

// TestArchivesRefused: signatures have no place in archives.
func TestArchivesRefused(t *testing.T) {
	s, _, _ := keyPair(t, sign.Ed25519, "")
	for _, r := range []string{"oci-archive:x.tar", "docker-archive:x.tar"} {
		_, err := sign.Sign(context.Background(), parse(t, r), s, sign.Options{})
		if fault.KindOf(err) != fault.BadInput {
			t.Errorf("%s: %v", r, err)
		}
	}
}

// TestKeys loads every kind of key repro takes, and refuses bad ones.
func TestKeys(t *testing.T) {
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	_ = edPub
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	ecDER, _ := x509.MarshalECPrivateKey(ecPriv)
	encEd, encEdPub, err := sign.GenerateKeyPair(sign.Ed25519, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	encEC, _, err := sign.GenerateKeyPair(sign.ECDSA, []byte(""))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := sign.LoadSigner(encEd, []byte("pw")); err != nil || !bytes.Equal(s.PublicKey(), encEdPub) {
		t.Errorf("the generated Ed25519 pair does not load back (%v)", err)
	}
	for _, c := range []struct {
		name     string
		key      []byte
		password string
		ok       bool
		msg      string // in the error
	}{
		{"pkcs8-ed25519", pkcs8(edPriv), "", true, ""},
		{"pkcs8-ecdsa", pkcs8(ecPriv), "", true, ""},
		{"sec1-ecdsa", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), "", true, ""},
		{"cosign-ed25519", encEd, "pw", true, ""},
		{"cosign-ed25519-wrong-password", encEd, "nope", false, "COSIGN_PASSWORD does not decrypt this cosign key"},
		{"cosign-ed25519-no-password", encEd, "", false, "COSIGN_PASSWORD is empty"},
		{"cosign-ecdsa-empty-password", encEC, "", true, ""},
		{"not-pem", []byte("hello"), "", false, ""},
		{"public-key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}), "", false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := sign.LoadSigner(c.key, []byte(c.password))
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok %v", err, c.ok)
			}
			if err != nil && fault.KindOf(err) != fault.BadInput {
				t.Errorf("a bad key is bad input, got %v", fault.KindOf(err))
			}
			if err != nil && !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %v, want it to say %q", err, c.msg)
			}
		})
	}
	if _, err := sign.ParseKeyType("rsa"); err == nil {
		t.Error("ParseKeyType(rsa) succeeded")
	}
}

func readIndex(t *testing.T, dir string) ocispec.Index {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	return idx
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// compareTrees returns "" when the two directories hold the same files
// with the same bytes, and else the first difference.
func compareTrees(t *testing.T, a, b string) string {
	t.Helper()
	files := func(root string) map[string][]byte {
		out := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			b, err := os.ReadFile(p)
			out[rel] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	fa, fb := files(a), files(b)
	for p, x := range fa {
		y, ok := fb[p]
		if !ok {
			return p + " only in the first"
		}
		if !bytes.Equal(x, y) {
			return p + " differs"
		}
	}
	for p := range fb {
		if _, ok := fa[p]; !ok {
			return p + " only in the second"
		}
	}
	return ""
}

// TestTampered: a changed payload, and signatures or attestations made for
// another image, fail verification with exit code 1, saying which.
func TestTampered(t *testing.T) {
	ctx := context.Background()
	host := registryHost(t)
	a, b := parse(t, host+"/t/app:a"), parse(t, host+"/t/app:b")
	imgA, imgB := ociImage(t), ociImage(t)
	write(t, a, imageref.Artifact{Image: imgA})
	write(t, b, imageref.Artifact{Image: imgB})
	da, _ := imgA.Digest()
	db, _ := imgB.Digest()
	s, _, pub := keyPair(t, sign.Ed25519, "")
	for _, r := range []imageref.Reference{a, b} {
		if _, err := sign.Sign(ctx, r, s, sign.Options{Attestations: both}); err != nil {
			t.Fatal(err)
		}
	}
	repo := host + "/t/app"
	tag := func(h v1.Hash, suffix string) name.Tag {
		tg, err := name.NewTag(repo + ":sha256-" + h.Hex + "." + suffix)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	get := func(tg name.Tag) v1.Image {
		img, err := remote.Image(tg)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	put := func(tg name.Tag, img v1.Image) {
		if err := remote.Write(tg, img); err != nil {
			t.Fatal(err)
		}
	}
	origSigA, origAttA := get(tag(da, "sig")), get(tag(da, "att"))
	restore := func() { put(tag(da, "sig"), origSigA); put(tag(da, "att"), origAttA) }
	verifyA := func() error {
		_, err := sign.VerifyImage(ctx, a, pub, sign.VerifyOptions{})
		if err != nil && fault.KindOf(err) != fault.CheckFailed {
			t.Fatalf("verification failed with %v, not a failed check: %v", fault.KindOf(err), err)
		}
		return err
	}
	if err := verifyA(); err != nil {
		t.Fatalf("untampered: %v", err)
	}

	t.Run("changed-payload", func(t *testing.T) {
		defer restore()
		sigs := layerSignatures(t, origSigA)
		payload := bytes.Replace(sigs[0].payload, []byte(host), []byte("evil.example"), 1)
		put(tag(da, "sig"), signaturesImage(t, payload, sigs[0].b64))
		err := verifyA()
		if err == nil || !strings.Contains(err.Error(), "not signed with this key, or the payload was changed") {
			t.Fatalf("changed payload: %v", err)
		}
	})
	t.Run("signature-of-another-digest", func(t *testing.T) {
		defer restore()
		put(tag(da, "sig"), get(tag(db, "sig")))
		err := verifyA()
		if err == nil || !strings.Contains(err.Error(), "made with the key but names "+db.String()) {
			t.Fatalf("another digest's signature: %v", err)
		}
	})
	t.Run("attestation-of-another-digest", func(t *testing.T) {
		defer restore()
		put(tag(da, "att"), get(tag(db, "att")))
		err := verifyA()
		if err == nil || !strings.Contains(err.Error(), "do not name "+da.String()) {
			t.Fatalf("another digest's attestation: %v", err)
		}
	})
}

type rawSignature struct {
	payload []byte
	b64     string
}

// layerSignatures reads a signatures image's payloads and signatures.
func layerSignatures(t *testing.T, img v1.Image) []rawSignature {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []rawSignature
	for _, d := range m.Layers {
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(rc)
		rc.Close()
		out = append(out, rawSignature{payload: buf.Bytes(), b64: d.Annotations["dev.cosignproject.cosign/signature"]})
	}
	return out
}

// signaturesImage is a cosign signatures image holding one signature.
func signaturesImage(t *testing.T, payload []byte, b64 string) v1.Image {
	t.Helper()
	sig, err := static.NewSignature(payload, b64)
	if err != nil {
		t.Fatal(err)
	}
	img, err := cmutate.AppendSignatures(cempty.Signatures(), false, sig)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
