package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/imagetest"
)

// TestRunBuildTests is what `repro build --test` calls on the image it
// built, before writing it: a passing file lets the build go on, a failing
// one stops it with exit 1, and the report goes to stderr.
func TestRunBuildTests(t *testing.T) {
	t.Parallel()
	img, err := mutate.Config(empty.Image, v1.Config{WorkingDir: "/app"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		yaml string
		kind fault.Kind
	}{
		{"schemaVersion: \"2.0.0\"\nmetadataTest: {workdir: /app}\n", fault.OK},
		{"schemaVersion: \"2.0.0\"\nmetadataTest: {workdir: /srv}\n", fault.CheckFailed},
	} {
		f, err := imagetest.Parse("tests.yaml", []byte(c.yaml))
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		g := &globals{stdout: io.Discard, stderr: &stderr, log: slog.New(slog.DiscardHandler)}
		err = runBuildTests(context.Background(), g, []*imagetest.File{f}, &testRuntime{}, imageref.Artifact{Image: img})
		if fault.KindOf(err) != c.kind || !strings.Contains(stderr.String(), "=== RUN: Metadata Test") {
			t.Errorf("%s: error %v (kind %v), want kind %v; stderr:\n%s", c.yaml, err, fault.KindOf(err), c.kind, stderr.String())
		}
	}
	if err := runBuildTests(context.Background(), &globals{stderr: io.Discard}, nil, &testRuntime{name: "docker"}, imageref.Artifact{Image: img}); fault.KindOf(err) != fault.BadInput {
		t.Errorf("--runtime docker: %v", err)
	}
}
