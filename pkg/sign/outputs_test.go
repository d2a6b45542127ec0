package sign_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/sign"
)

// TestSignOutputs signs a build's outputs: each layout once however many
// of its tags were written, an untagged layout at the default tag, and no
// archive (a warning says so).
func TestSignOutputs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	img := ociImage(t)
	want, _ := img.Digest()
	a := imageref.Artifact{Image: img}
	one, two := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	refs := []imageref.Reference{
		parse(t, "oci:"+one+":a"), parse(t, "oci:"+one+":b"),
		parse(t, "oci:"+two), // written at the default tag, latest
		parse(t, "oci-archive:"+filepath.Join(dir, "x.tar")),
	}
	for _, r := range refs {
		write(t, r, a)
	}
	s, _, pub := keyPair(t, sign.Ed25519, "")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if err := sign.SignOutputs(ctx, refs, s, "latest", sign.Options{ExpectDigest: want.String(), Attestations: both, Log: log}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "msg=signed"); n != 2 {
		t.Errorf("signed %d times, want 2 (one per layout):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `msg="not signed: an archive holds no signatures"`) {
		t.Errorf("no warning for the archive:\n%s", logs.String())
	}
	for _, r := range []string{"oci:" + one + ":a", "oci:" + one + ":b", "oci:" + two + ":latest"} {
		if _, err := sign.VerifyImage(ctx, parse(t, r), pub, sign.VerifyOptions{Require: []string{both[0].PredicateType, both[1].PredicateType}}); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}

	err := sign.SignOutputs(ctx, refs[3:], s, "latest", sign.Options{})
	if !errors.Is(err, sign.ErrNothingSignable) || fault.KindOf(err) != fault.BadInput {
		t.Errorf("archives only: err = %v", err)
	}
	if sign.AnySignable(refs[3:]) || !sign.AnySignable(refs) {
		t.Error("AnySignable is wrong")
	}
}

// TestSignOutputsNamesTheOutput refuses to sign an output that names
// another digest than the one built, saying which.
func TestSignOutputsNamesTheOutput(t *testing.T) {
	ref := parse(t, "oci:"+filepath.Join(t.TempDir(), "l")+":v1")
	write(t, ref, imageref.Artifact{Image: ociImage(t)})
	s, _, _ := keyPair(t, sign.Ed25519, "")
	other, _ := ociImage(t).Digest()
	err := sign.SignOutputs(context.Background(), []imageref.Reference{ref}, s, "latest", sign.Options{ExpectDigest: other.String()})
	if err == nil || !strings.HasPrefix(err.Error(), "signing "+ref.String()+": ") {
		t.Errorf("err = %v", err)
	}
}
