package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/rhysd/actionlint"
	"github.com/santhosh-tekuri/jsonschema/v6"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Files names what Check reads.
type Files struct {
	GitHub, GitLab, Kubernetes string
	Schema                     string // GitLab's CI JSON schema
	Spec                       string // the spec the examples build
}

// Check returns every problem found in the examples; an error means a
// file could not be read at all.
func Check(f Files, repro string) ([]string, error) {
	platforms, err := specPlatforms(f.Spec)
	if err != nil {
		return nil, err
	}
	var problems []string
	add := func(file string, ps ...string) {
		for _, p := range ps {
			problems = append(problems, file+": "+p)
		}
	}
	for _, c := range []struct {
		file string
		fn   func(string, []string) ([]string, error)
	}{
		{f.GitHub, checkGitHub},
		{f.GitLab, func(p string, pl []string) ([]string, error) { return checkGitLab(p, f.Schema, pl) }},
		{f.Kubernetes, checkKubernetes},
	} {
		ps, err := c.fn(c.file, platforms)
		if err != nil {
			return nil, err
		}
		add(c.file, ps...)
		raw, err := os.ReadFile(c.file)
		if err != nil {
			return nil, err
		}
		ps, err = checkReproFlags(string(raw), repro)
		if err != nil {
			return nil, err
		}
		add(c.file, ps...)
	}
	return problems, nil
}

// specPlatforms reads the platforms a spec lists.
func specPlatforms(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s struct {
		Platforms []string `json:"platforms"`
	}
	if err := yaml.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(s.Platforms) < 2 {
		return nil, fmt.Errorf("%s: the fleet example should list several platforms", path)
	}
	return s.Platforms, nil
}

func samePlatforms(what string, got, want []string) []string {
	g, w := slices.Clone(got), slices.Clone(want)
	sort.Strings(g)
	sort.Strings(w)
	if !slices.Equal(g, w) {
		return []string{fmt.Sprintf("%s lists platforms %v; the spec builds %v", what, got, want)}
	}
	return nil
}

// checkGitHub lints the workflow with actionlint and checks that its
// matrix builds the spec's platforms.
func checkGitHub(path string, platforms []string) ([]string, error) {
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{Shellcheck: shellcheck()})
	if err != nil {
		return nil, err
	}
	errs, err := l.LintFile(path, nil)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, e := range errs {
		problems = append(problems, fmt.Sprintf("%d:%d: actionlint: %s [%s]", e.Line, e.Column, e.Message, e.Kind))
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var wf struct {
		Jobs map[string]struct {
			Strategy struct {
				Matrix struct {
					Platform []string `json:"platform"`
				} `json:"matrix"`
			} `json:"strategy"`
		} `json:"jobs"`
	}
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		return append(problems, err.Error()), nil
	}
	problems = append(problems, samePlatforms("jobs.platform.strategy.matrix.platform", wf.Jobs["platform"].Strategy.Matrix.Platform, platforms)...)
	return problems, nil
}

// shellcheck is the shellcheck that actionlint runs over run: scripts,
// where one is installed.
func shellcheck() string {
	if p, err := exec.LookPath("shellcheck"); err == nil {
		return p
	}
	return ""
}

// checkGitLab validates the file against GitLab's schema and checks its
// parallel:matrix.
func checkGitLab(path, schemaPath string, platforms []string) ([]string, error) {
	schemaRaw, err := os.ReadFile(schemaPath)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaRaw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", schemaPath, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("gitlab-ci.schema.json", doc); err != nil {
		return nil, err
	}
	sch, err := c.Compile("gitlab-ci.schema.json")
	if err != nil {
		return nil, fmt.Errorf("compiling %s: %w", schemaPath, err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return []string{err.Error()}, nil
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return []string{err.Error()}, nil
	}
	var problems []string
	if err := sch.Validate(inst); err != nil {
		problems = append(problems, "GitLab's CI schema: "+strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	var ci struct {
		Platforms struct {
			Parallel struct {
				Matrix []struct {
					Platform []string `json:"PLATFORM"`
				} `json:"matrix"`
			} `json:"parallel"`
		} `json:".platforms"`
	}
	if err := yaml.Unmarshal(raw, &ci); err != nil {
		return append(problems, err.Error()), nil
	}
	m := ci.Platforms.Parallel.Matrix
	if len(m) != 1 {
		return append(problems, ".platforms.parallel.matrix should hold one entry"), nil
	}
	return append(problems, samePlatforms(".platforms.parallel.matrix[0].PLATFORM", m[0].Platform, platforms)...), nil
}

// checkKubernetes decodes every document strictly into its k8s.io/api
// type and checks the Indexed Job.
func checkKubernetes(path string, platforms []string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := k8syaml.NewYAMLReader(bufio.NewReader(f))
	var problems []string
	jobs := map[string]*batchv1.Job{}
	for n := 0; ; n++ {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return append(problems, err.Error()), nil
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			problems = append(problems, fmt.Sprintf("document %d: %v", n, err))
			continue
		}
		switch meta.APIVersion + " " + meta.Kind {
		case "batch/v1 Job":
			var j batchv1.Job
			if err := yaml.UnmarshalStrict(doc, &j); err != nil {
				problems = append(problems, fmt.Sprintf("document %d (Job): %v", n, err))
				continue
			}
			jobs[j.Name] = &j
		case "v1 PersistentVolumeClaim":
			var p corev1.PersistentVolumeClaim
			if err := yaml.UnmarshalStrict(doc, &p); err != nil {
				problems = append(problems, fmt.Sprintf("document %d (PersistentVolumeClaim): %v", n, err))
			}
		default:
			problems = append(problems, fmt.Sprintf("document %d: unexpected %s %s", n, meta.APIVersion, meta.Kind))
		}
	}
	j := jobs["repro-platforms"]
	if j == nil {
		return append(problems, "no Job named repro-platforms"), nil
	}
	if j.Spec.CompletionMode == nil || *j.Spec.CompletionMode != batchv1.IndexedCompletion {
		problems = append(problems, "repro-platforms: completionMode must be Indexed (JOB_COMPLETION_INDEX picks the platform)")
	}
	var listed []string
	for _, c := range j.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == "PLATFORMS" {
				listed = strings.Fields(e.Value)
			}
		}
	}
	problems = append(problems, samePlatforms("repro-platforms PLATFORMS", listed, platforms)...)
	if j.Spec.Completions == nil || int(*j.Spec.Completions) != len(platforms) {
		problems = append(problems, fmt.Sprintf("repro-platforms: completions must be %d, one per platform", len(platforms)))
	}
	if jobs["repro-index"] == nil {
		problems = append(problems, "no Job named repro-index")
	}
	return problems, nil
}

var (
	// a repro invocation: `repro build`, `"$(go env GOPATH)/bin/repro" index`
	invocation = regexp.MustCompile(`(?:^|[\s"/])repro"?\s+(build|index|lock|verify|sign|test)\b(.*)`)
	flagToken  = regexp.MustCompile(`(?:^|\s)(--?[a-zA-Z][a-zA-Z0-9-]*)`)
	helpFlag   = regexp.MustCompile(`(?m)^\s+(?:-([a-zA-Z]), )?--([a-z0-9-]+)`)
)

// checkReproFlags finds every repro command line in text (continuation
// lines joined) and checks each flag against `repro help CMD`.
func checkReproFlags(text, repro string) ([]string, error) {
	text = strings.ReplaceAll(text, "\\\n", " ")
	known := map[string]map[string]bool{}
	var problems []string
	found := 0
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		m := invocation.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		found++
		cmd, rest := m[1], m[2]
		if p := strings.IndexAny(rest, "|;"); p >= 0 {
			rest = rest[:p]
		}
		flags, ok := known[cmd]
		if !ok {
			out, err := exec.Command(repro, "help", cmd).CombinedOutput()
			if err != nil {
				return nil, fmt.Errorf("repro help %s: %v\n%s", cmd, err, out)
			}
			flags = map[string]bool{}
			for _, fm := range helpFlag.FindAllStringSubmatch(string(out), -1) {
				if fm[1] != "" {
					flags["-"+fm[1]] = true
				}
				flags["--"+fm[2]] = true
			}
			for _, g := range []string{"-q", "--quiet", "--json", "-v"} {
				flags[g] = true
			}
			known[cmd] = flags
		}
		for _, fm := range flagToken.FindAllStringSubmatch(rest, -1) {
			if !flags[fm[1]] {
				problems = append(problems, fmt.Sprintf("line %d: repro %s has no flag %s", i+1, cmd, fm[1]))
			}
		}
	}
	if found == 0 {
		problems = append(problems, "no repro command line found")
	}
	return problems, nil
}
