package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/imagetest"
)

var testCmd = &command{
	name:  "test",
	usage: "test REF -c tests.yaml [-c more.yaml] [-o text|json|junit] [--test-report F] [--runtime podman]",
	short: "run container-structure-test files against an image, without running it",
	long: `
Test runs structure tests against REF: container-structure-test's test
files, schema 2.0.0 (fileExistenceTests, fileContentTests, metadataTest,
commandTests), with the same verdicts. The filesystem is read from the
layers as they stream past, whiteouts applied: nothing is extracted, no
root and no daemon are needed, and owner and group checks see the layers'
own uid and gid.

commandTests run in containers only with --runtime podman; otherwise they
are reported as skipped (never as passed). --podman and --podman-arg give
podman's command line; podman reads its own environment (CONTAINERS_CONF,
CONTAINERS_STORAGE_CONF).

Unknown keys in a test file are errors, named file:line:col (exit 2).
pkg/imagetest/doc.go lists the semantics kept from container-structure-test,
quirks included (exposed ports are compared without their protocol), and
where repro is stricter.

-o picks the report on stdout: text (default), json or junit, as
container-structure-test writes them. --test-report F writes the report to
F instead (json when -o is text) and text on stdout.

For an index, every platform's image is tested, each result named after its
platform, unless --platform picks one.

Exit status: 0 when every test passed (or was skipped), 1 when one failed.

Examples:
  repro test oci:out/app:v1 -c tests.yaml
  repro test registry.example.com/app:v1 -c fs.yaml -c meta.yaml -o junit > report.xml
  repro test oci:out/app:v1 -c tests.yaml --runtime podman --test-report report.json`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		o := &testOpts{g: g}
		fs.StringArrayVarP(&o.configs, "config", "c", nil, "a container-structure-test `FILE` (repeatable)")
		fs.StringVarP(&o.output, "output", "o", "text", "report `FORMAT`: text, json or junit")
		fs.StringVar(&o.report, "test-report", "", "write the report to `FILE` (json unless -o junit), text on stdout")
		fs.StringVar(&o.suite, "junit-suite-name", imagetest.DefaultSuiteName, "the JUnit test suite's `NAME`")
		o.runtime.register(fs)
		fs.StringVar(&o.platform, "platform", "", "for an index: test only this platform (`os/arch[/variant]`)")
		fs.StringArrayVar(&o.insecure, "insecure-registry", nil, "speak plain HTTP to this registry `HOST` (repeatable)")
		return o.run
	},
}

type testOpts struct {
	g        *globals
	configs  []string
	output   string
	report   string
	suite    string
	runtime  testRuntime
	platform string
	insecure []string
}

// testRuntime is how commandTests run: the --runtime, --podman and
// --podman-arg flags, which repro test has and build --test can share.
type testRuntime struct {
	name   string
	podman string
	args   []string
}

func (r *testRuntime) register(fs *pflag.FlagSet) {
	fs.StringVar(&r.name, "runtime", "", "run commandTests with this `RUNTIME` (podman); without it they are skipped")
	fs.StringVar(&r.podman, "podman", "podman", "podman's `PATH` or name")
	fs.StringArrayVar(&r.args, "podman-arg", nil, "an `ARG` given to podman before its subcommand (repeatable), like --root=DIR")
}

// options turns the flags into a run's options: podman's command line and
// temporary directory come from here, never from the library.
func (r *testRuntime) options(g *globals) (imagetest.Options, error) {
	opts := imagetest.Options{Clock: time.Now, Log: g.log}
	switch r.name {
	case "":
	case "podman":
		opts.Runtime = &imagetest.Podman{
			Command:  append([]string{r.podman}, r.args...),
			TempDir:  os.TempDir(),
			Platform: "linux/" + runtime.GOARCH,
		}
	default:
		return opts, fault.Bad(fmt.Errorf("--runtime %s: the one runtime is podman", r.name))
	}
	return opts, nil
}

// runBuildTests is `repro build --test`: it runs the loaded test files
// against the built image (or every image of the built index) before
// anything is written, prints the text report on stderr (stdout carries
// the digest), and returns a CheckFailed error when a test failed.
func runBuildTests(ctx context.Context, g *globals, files []*imagetest.File, rt *testRuntime, a imageref.Artifact) error {
	opts, err := rt.options(g)
	if err != nil {
		return err
	}
	sum, err := imagetest.Run(ctx, a, files, opts)
	if err != nil {
		return err
	}
	if !g.quiet || sum.Fail > 0 {
		sum.WriteText(g.stderr)
	}
	rt.warnSkipped(g, sum)
	if err := sum.Err(); err != nil {
		return fmt.Errorf("build --test: %w; nothing was written", err)
	}
	return nil
}

// warnSkipped says how to run the tests a run skipped for want of a
// container runtime: the report says only that they were skipped.
func (r *testRuntime) warnSkipped(g *globals, sum *imagetest.Summary) {
	if sum.Skip > 0 && r.name == "" {
		g.log.Warn("tests skipped: commandTests need a container runtime; give --runtime podman to run them", "skipped", sum.Skip)
	}
}

func (o *testOpts) run(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return fault.Bad(errors.New("give one image reference, like oci:out/app:v1, and test files with -c"))
	}
	if o.g.json {
		o.output = imagetest.JSON
	}
	switch o.output {
	case imagetest.Text, imagetest.JSON, imagetest.JUnit:
	default:
		return fault.Bad(fmt.Errorf("-o %s: use text, json or junit", o.output))
	}
	if len(o.configs) == 0 {
		return fault.Bad(errors.New("give at least one test file with -c tests.yaml"))
	}
	files, err := imagetest.LoadFiles(o.configs) // a list of problems is worded by report
	if err != nil {
		return err
	}
	opts, err := o.runtime.options(o.g)
	if err != nil {
		return err
	}
	a, err := openRef(ctx, args[0], o.insecure)
	if err != nil {
		return err
	}
	defer a.Close()
	opts.Platform = o.platform
	sum, err := imagetest.Run(ctx, *a, files, opts)
	if err != nil {
		return err
	}
	if err := o.write(sum); err != nil {
		return err
	}
	o.runtime.warnSkipped(o.g, sum)
	if err := sum.Err(); err != nil {
		if sum.Total == 0 {
			return err
		}
		return errSilent{fault.CheckFailed}
	}
	return nil
}

func (o *testOpts) write(sum *imagetest.Summary) error {
	if o.report == "" {
		return sum.Write(o.g.stdout, o.output, o.suite)
	}
	format := o.output
	if format == imagetest.Text {
		format = imagetest.JSON
	}
	if err := sum.WriteText(o.g.stdout); err != nil {
		return err
	}
	var b bytes.Buffer
	if err := sum.Write(&b, format, o.suite); err != nil {
		return err
	}
	if err := atomicfs.WriteFile(o.report, b.Bytes()); err != nil {
		return fmt.Errorf("writing the test report: %w", err)
	}
	return nil
}
