package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/reprobuild/repro/pkg/fault"
)

var ignorePos = cmpopts.IgnoreUnexported(Spec{})

func ptr[T any](v T) *T { return &v }

func parse(t *testing.T, text string, opts LoadOptions) *Spec {
	t.Helper()
	s, err := Parse("repro.yaml", "/ctx", []byte(text), opts)
	if err != nil {
		t.Fatalf("Parse:\n%s\nerror: %v", text, err)
	}
	return s
}

// parseErr parses text, which must fail, and returns the message.
func parseErr(t *testing.T, text string, opts LoadOptions) string {
	t.Helper()
	s, err := Parse("repro.yaml", "/ctx", []byte(text), opts)
	if err == nil {
		t.Fatalf("Parse:\n%s\n= %+v, want an error", text, s)
	}
	if k := fault.KindOf(err); k != fault.BadInput {
		t.Errorf("error kind %v, want bad input", k)
	}
	return err.Error()
}

func TestExamples(t *testing.T) {
	epoch := &Epoch{Seconds: 1700000000}
	amd64 := Platform{OS: "linux", Arch: "amd64"}
	arm64 := Platform{OS: "linux", Arch: "arm64"}
	tests := []struct {
		name  string
		check func(t *testing.T, s *Spec)
	}{
		{"static-site", func(t *testing.T, s *Spec) {
			want := &Spec{
				Version:   1,
				Name:      "static-site",
				Base:      "scratch",
				Platforms: []Platform{amd64},
				Epoch:     epoch,
				Vars:      map[string]string{"env": "dev"},
				Layers: []Layer{{
					Name: "site",
					Contents: []Content{
						{Path: "/srv/www", Type: TypeFile, Source: "site/", Exclude: []string{"**/*.map"}},
						{Path: "/srv/www/robots.txt", Type: TypeFile, Content: ptr("User-agent: *\nDisallow:\n")},
						{Path: "/srv/www/index.htm", Type: TypeSymlink, Target: "index.html"},
						{Path: "/srv/www/.well-known", Type: TypeDir, Mode: ptr(Mode(0o750)), UID: ptr(101), GID: ptr(101)},
					},
				}},
				Config: Config{
					WorkingDir: "/srv/www",
					Volumes:    []string{"/srv/www"},
					Labels: map[string]string{
						"org.opencontainers.image.title":  "{{.Name}}",
						"org.opencontainers.image.source": "https://example.com/static-site",
						"example.env":                     "{{.Vars.env}}",
					},
				},
				Annotations: map[string]string{
					"org.opencontainers.image.version":  "{{.Version}}",
					"org.opencontainers.image.revision": "{{.GitCommit}}",
				},
				File: s.File,
				Dir:  s.Dir, SpecDir: s.SpecDir,
			}
			if diff := cmp.Diff(want, s, ignorePos); diff != "" {
				t.Errorf("spec mismatch (-want +got):\n%s", diff)
			}
		}},
		{"go-server", func(t *testing.T, s *Spec) {
			if s.Base != "scratch" || !cmp.Equal(s.Epoch, epoch) {
				t.Errorf("name, base, epoch = %q, %q, %+v", s.Name, s.Base, s.Epoch)
			}
			if diff := cmp.Diff([]Platform{amd64}, s.Platforms); diff != "" {
				t.Errorf("default platforms (-want +got):\n%s", diff)
			}
			byPath := map[string]Content{}
			for _, l := range s.Layers {
				for _, c := range l.Contents {
					byPath[c.Path] = c
				}
			}
			server := byPath["/app/server"]
			if server.Type != TypeFile || server.Go != "." || server.Mode != nil || !cmp.Equal(server.LDFlags, []string{"-X main.version={{.Version}}"}) {
				t.Errorf("/app/server = %+v", server)
			}
			if diff := cmp.Diff([]string{"cap_net_bind_service"}, server.Capabilities); diff != "" {
				t.Errorf("capabilities (-want +got):\n%s", diff)
			}
			if c := byPath["/usr/local/bin/server"]; c.Type != TypeSymlink || c.Target != "/app/server" {
				t.Errorf("symlink = %+v", c)
			}
			if c := byPath["/app/server-link"]; c.Type != TypeHardlink || c.Target != "/app/server" {
				t.Errorf("hardlink = %+v", c)
			}
			if c := byPath["/var/cache/app"]; c.Type != TypeDir || *c.Mode != 0o750 || *c.UID != 65532 || *c.GID != 65532 {
				t.Errorf("cache dir = %+v", c)
			}
			if c := byPath["/etc/motd"]; c.Type != TypeFile || c.Content == nil || c.UID != nil || c.Mode != nil {
				t.Errorf("/etc/motd = %+v (uid and mode are left to the build's defaults)", c)
			}
			if diff := cmp.Diff([]string{"8080/tcp"}, s.Config.ExposedPorts); diff != "" {
				t.Errorf("exposedPorts (-want +got):\n%s", diff)
			}
			if s.Config.StopSignal != "SIGTERM" || s.Config.User != "65532:65532" || s.Config.Env["APP_VERSION"] != "{{.Version}}" {
				t.Errorf("config = %+v", s.Config)
			}
		}},
		{"multi-platform", func(t *testing.T, s *Spec) {
			if diff := cmp.Diff([]Platform{amd64, arm64}, s.Platforms); diff != "" {
				t.Errorf("platforms (-want +got):\n%s", diff)
			}
			for _, l := range s.Layers {
				for _, c := range l.Contents {
					if !strings.Contains(c.Source, "{{.Arch}}") {
						continue
					}
					vals := Values{Name: s.Name}
					for _, p := range s.Platforms {
						got, err := s.Expand("source", c.Source, vals.ForPlatform(p))
						if err != nil {
							t.Fatal(err)
						}
						if !strings.HasSuffix(got, "-"+p.Arch) {
							t.Errorf("source for %s = %q, want it to end in -%s", p, got, p.Arch)
						}
					}
				}
			}
		}},
	}
	tests = append(tests, struct {
		name  string
		check func(t *testing.T, s *Spec)
	}{"repro", func(t *testing.T, s *Spec) {
		root, _ := filepath.Abs(filepath.Join("..", ".."))
		if s.Dir != root || s.SpecPath() != "specs/repro/repro.yaml" || s.Layers[1].Contents[0].Go != "./cmd/repro" {
			t.Errorf("specs/repro: context %s (want %s), spec %s, go %q", s.Dir, root, s.SpecPath(), s.Layers[1].Contents[0].Go)
		}
	}})
	checks := map[string]func(t *testing.T, s *Spec){}
	for _, tt := range tests {
		checks[tt.name] = tt.check
	}
	// Every spec under specs/examples (and specs/repro) loads; the ones
	// named above are also checked field by field.
	files, err := filepath.Glob(filepath.Join("..", "..", "specs", "examples", "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("..", "..", "specs", "repro", "repro.yaml"))
	found := map[string]string{}
	for _, file := range files {
		s, err := Load(file, LoadOptions{})
		if err != nil {
			t.Errorf("example %s: %v", file, err)
			continue
		}
		found[s.Name] = file
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := found[tt.name]
			if file == "" {
				t.Fatalf("no example spec is named %s", tt.name)
			}
			s, err := Load(file, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if s.File != file {
				t.Errorf("File = %q, want %q", s.File, file)
			}
			if want, _ := filepath.Abs(filepath.Dir(file)); s.SpecDir != want || s.Context == "" && s.Dir != want {
				t.Errorf("Dir = %q, SpecDir = %q, want %q", s.Dir, s.SpecDir, want)
			}
			tt.check(t, s)
		})
	}
}

func TestDefaults(t *testing.T) {
	s := parse(t, `
version: 1
name: app
layers:
  - contents:
      - path: /srv//www/
        source: site/
      - path: /etc/motd
        content: ""
      - path: /app/link
        type: hardlink
        target: /srv/www/../www/index.html
      - path: /gone
        type: remove
  - name: second
    contents:
      - path: /var/cache
        type: dir
        mode: 750
  - contents:
      - path: /opt/x
        url: https://example.com/x
        sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
        mode: 0o4755
config:
  exposedPorts: ["8080", "53/udp", 443/tcp]
  env: {PORT: 8080, DEBUG: false}
`, LoadOptions{})
	want := &Spec{
		Version:   1,
		Name:      "app",
		Base:      "scratch",
		Platforms: []Platform{{OS: "linux", Arch: "amd64"}},
		Layers: []Layer{
			{Name: "layer-1", Contents: []Content{
				{Path: "/srv/www", Type: TypeFile, Source: "site/"},
				{Path: "/etc/motd", Type: TypeFile, Content: ptr("")},
				{Path: "/app/link", Type: TypeHardlink, Target: "/srv/www/index.html"},
				{Path: "/gone", Type: TypeRemove},
			}},
			{Name: "second", Contents: []Content{
				{Path: "/var/cache", Type: TypeDir, Mode: ptr(Mode(0o750))},
			}},
			{Name: "layer-3", Contents: []Content{
				{Path: "/opt/x", Type: TypeFile, URL: "https://example.com/x", SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Mode: ptr(Mode(0o4755))},
			}},
		},
		Config: Config{
			ExposedPorts: []string{"8080/tcp", "53/udp", "443/tcp"},
			Env:          map[string]string{"PORT": "8080", "DEBUG": "false"},
		},
		File: "repro.yaml",
		Dir:  "/ctx", SpecDir: "/ctx",
	}
	if diff := cmp.Diff(want, s, ignorePos); diff != "" {
		t.Errorf("spec mismatch (-want +got):\n%s", diff)
	}
	if s.Epoch != nil {
		t.Errorf("Epoch = %+v, want nil (the build then reads $SOURCE_DATE_EPOCH)", s.Epoch)
	}
}

func TestEpoch(t *testing.T) {
	tests := []struct {
		in   string
		want *Epoch
	}{
		{"0", &Epoch{}},
		{"1700000000", &Epoch{Seconds: 1700000000}},
		{`"1700000000"`, &Epoch{Seconds: 1700000000}},
		{"git", &Epoch{Git: true}},
		{"8589934591", &Epoch{Seconds: 8589934591}},
		{"~", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s := parse(t, "version: 1\nname: app\nepoch: "+tt.in+"\n", LoadOptions{})
			if diff := cmp.Diff(tt.want, s.Epoch); diff != "" {
				t.Errorf("epoch (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{"-1", "8589934592", "1.5", "Git", "now", "[1]"} {
		t.Run("bad "+bad, func(t *testing.T) {
			msg := parseErr(t, "version: 1\nname: app\nepoch: "+bad+"\n", LoadOptions{})
			if !strings.HasPrefix(msg, "repro.yaml:3:8: epoch: ") {
				t.Errorf("message %q does not name repro.yaml:3:8 and epoch", msg)
			}
		})
	}
}

func TestMergeKeys(t *testing.T) {
	s := parse(t, `
version: 1
name: app
layers:
  - contents:
      - &owned {path: /a, type: dir, mode: "0750", uid: 7, gid: 7}
      - {<<: *owned, path: /b}
      - {<<: [*owned], path: /c, mode: "0700"}
`, LoadOptions{})
	got := s.Layers[0].Contents
	want := []Content{
		{Path: "/a", Type: TypeDir, Mode: ptr(Mode(0o750)), UID: ptr(7), GID: ptr(7)},
		{Path: "/b", Type: TypeDir, Mode: ptr(Mode(0o750)), UID: ptr(7), GID: ptr(7)},
		{Path: "/c", Type: TypeDir, Mode: ptr(Mode(0o700)), UID: ptr(7), GID: ptr(7)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("contents (-want +got):\n%s", diff)
	}
}

func TestAliasBomb(t *testing.T) {
	// 200 layers of 200 entries of 200 excludes each, from a few lines.
	const n = 200
	list := func(first, rest string) string {
		return "[" + first + strings.Repeat(", "+rest, n-1) + "]"
	}
	spec := "version: 1\nname: app\nlayers: " +
		list("&l {contents: "+list("&c {path: /a, source: a, exclude: "+list("&e x", "x")+"}", "*c")+"}", "*l") + "\n"
	start := time.Now()
	msg := parseErr(t, spec, LoadOptions{})
	if !strings.Contains(msg, "the aliases (*name) in this file expand to too much") {
		t.Errorf("message %q does not mention the aliases", msg)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	// The same with modest use of aliases loads.
	parse(t, "version: 1\nname: app\nlayers:\n  - contents:\n      - {path: /a, source: a, exclude: &e ['*.map', '*.tmp']}\n      - {path: /b, source: b, exclude: *e}\n", LoadOptions{})
}

func TestTemplatesAtLoad(t *testing.T) {
	const head = "version: 1\nname: app\n"
	tests := []struct {
		name    string
		spec    string
		opts    LoadOptions
		wantErr string // empty: the spec loads
	}{
		{"arch in source", head + "layers: [{contents: [{path: /a, source: 'bin/{{.Os}}-{{.Arch}}{{.Variant}}'}]}]\n", LoadOptions{}, ""},
		{"arch in label", head + "config: {labels: {arch: '{{.Arch}}'}}\n", LoadOptions{}, "repro.yaml:3:25: config.labels.arch: {{.Arch}} is only known in source"},
		{"os in annotation", head + "annotations: {os: '{{.Os}}'}\n", LoadOptions{}, "annotations.os: {{.Os}} is only known in source"},
		{"variant in tag", head + "tags: ['r/app:{{.Variant}}']\n", LoadOptions{}, "tags[0]: {{.Variant}} is only known in source"},
		{"missing var", head + "tags: ['r/app:{{.Vars.env}}']\n", LoadOptions{}, `repro.yaml:3:8: tags[0]: {{.Vars.env}}: no variable "env"; define it under vars:, or give it to the build`},
		{"missing var in env", head + "config: {env: {A: '{{.Vars.env}}'}}\n", LoadOptions{}, `config.env.A: {{.Vars.env}}: no variable "env"`},
		{"missing var in source", head + "layers: [{contents: [{path: /a, source: '{{.Vars.dir}}/a'}]}]\n", LoadOptions{}, `layers[0].contents[0].source: {{.Vars.dir}}: no variable "dir"`},
		{"var override", head + "tags: ['r/app:{{.Vars.env}}']\n", LoadOptions{Vars: map[string]string{"env": "prod"}}, ""},
		{"var from spec", head + "vars: {env: dev}\ntags: ['r/app:{{.Vars.env}}']\n", LoadOptions{}, ""},
		{"var override of spec var", head + "vars: {env: dev}\ntags: ['r/app:{{.Vars.env}}']\n", LoadOptions{Vars: map[string]string{"env": "prod"}}, ""},
		{"every value", head + "annotations: {a: '{{.Name}} {{.Version}} {{.GitCommit}} {{.GitShortCommit}} {{.Epoch}} {{.Date}}'}\n", LoadOptions{}, ""},
		{"unknown value", head + "annotations: {a: '{{.Commit}}'}\n", LoadOptions{}, "annotations.a: {{.Commit}}: there is no value .Commit"},
		{"typo value", head + "annotations: {a: '{{.Verison}}'}\n", LoadOptions{}, "did you mean .Version?"},
		{"syntax", head + "tags: ['r/app:{{.Version']\n", LoadOptions{}, `tags[0]: "r/app:{{.Version" is not a valid template: unclosed action`},
		{"unused broken template", head + "vars: {x: y}\nconfig: {env: {UNUSED: '{{end}}'}}\n", LoadOptions{}, `config.env.UNUSED: "{{end}}" is not a valid template`},
		{"unknown function", head + "tags: ['{{nope .Version}}']\n", LoadOptions{}, `function "nope" not defined`},
		{"content is not a template", head + "layers: [{contents: [{path: /a, content: '{{.Arch}} {{'}]}]\n", LoadOptions{}, ""},
		{"huge expansion", head + "tags: ['{{range 10000000}}0123456789{{end}}']\n", LoadOptions{}, "expands to more than 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("repro.yaml", "/ctx", []byte(tt.spec), tt.opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if s == nil {
					t.Fatal("Parse returned no spec")
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded; want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestUndefinedVarCause: a spec naming a variable nobody defines fails
// to load with an UndefinedVarError naming it, found through the error
// list, so that a caller can say how it takes variables (the message
// names no flag).
func TestUndefinedVarCause(t *testing.T) {
	_, err := Parse("repro.yaml", "/ctx", []byte("version: 1\nname: app\ntags: ['r/app:{{.Vars.env}}', 'r/app:{{.Version}}']\n"), LoadOptions{})
	var undefined *UndefinedVarError
	if !errors.As(err, &undefined) || undefined.Name != "env" {
		t.Fatalf("Parse: %v (%T); want an UndefinedVarError naming env", err, err)
	}
	if strings.Contains(err.Error(), "--") {
		t.Errorf("the message names a flag: %v", err)
	}
	_, err = Parse("repro.yaml", "/ctx", []byte("version: 1\nname: app\ntags: ['r/app:{{.Vesrion}}']\n"), LoadOptions{})
	if err == nil || errors.As(err, &undefined) {
		t.Errorf("an unknown value is not an undefined variable: %v", err)
	}
}

func TestExpand(t *testing.T) {
	s := parse(t, "version: 1\nname: app\nvars: {env: prod}\ntags: ['r/app:{{.Version}}']\nlayers: [{contents: [{path: /a, source: 'x'}]}]\n", LoadOptions{})
	v := Values{
		Name: "app", Version: "1.2.3", GitCommit: strings.Repeat("a", 40), GitShortCommit: strings.Repeat("a", 12),
		Epoch: 1700000000, Date: DateOf(1700000000), Vars: map[string]string{"env": "prod"},
	}
	tests := []struct {
		name, text string
		data       any
		want       string
	}{
		{"plain", "no templates here", v, "no templates here"},
		{"plain with braces", "a } b {", v, "a } b {"},
		{"values", "{{.Name}}:{{.Version}}-{{.GitShortCommit}}", v, "app:1.2.3-aaaaaaaaaaaa"},
		{"epoch and date", "{{.Epoch}} {{.Date}}", v, "1700000000 20231114"},
		{"vars", "{{.Vars.env}}", v, "prod"},
		{"index", `{{index .Vars "env"}}`, v, "prod"},
		{"source", "dist/{{.Os}}-{{.Arch}}{{with .Variant}}-{{.}}{{end}}", v.ForPlatform(Platform{OS: "linux", Arch: "arm", Variant: "v7"}), "dist/linux-arm-v7"},
		{"source no variant", "dist/{{.Os}}-{{.Arch}}{{with .Variant}}-{{.}}{{end}}", v.ForPlatform(Platform{OS: "linux", Arch: "amd64"}), "dist/linux-amd64"},
		{"source sees values", "{{.Name}}-{{.Arch}}", v.ForPlatform(Platform{OS: "linux", Arch: "arm64"}), "app-arm64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Expand("tags[0]", tt.text, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Expand(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}

	errTests := []struct {
		name, field, text string
		data              any
		want              string
	}{
		{"arch outside source", "tags[0]", "{{.Arch}}", v, "repro.yaml:4:8: tags[0]: {{.Arch}} is only known in source"},
		{"missing var", "tags[0]", "{{.Vars.region}}", v, `repro.yaml:4:8: tags[0]: {{.Vars.region}}: no variable "region"`},
		{"nil vars", "tags[0]", "{{.Vars.region}}", Values{}, `repro.yaml:4:8: tags[0]: {{.Vars.region}}: no variable "region"`},
		{"syntax", "layers[0].contents[0].source", "{{", v.ForPlatform(Platform{OS: "linux", Arch: "amd64"}), "repro.yaml:5:41: layers[0].contents[0].source: \"{{\" is not a valid template"},
		{"field without a place falls back to its parent", "config.env.X", "{{.Nope}}", v, "repro.yaml:1:1: config.env.X: {{.Nope}}: there is no value .Nope"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Expand(tt.field, tt.text, tt.data)
			if err == nil {
				t.Fatal("Expand succeeded")
			}
			if k := fault.KindOf(err); k != fault.BadInput {
				t.Errorf("kind %v, want bad input", k)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error", err)
			}
			if e.Field != tt.field {
				t.Errorf("Field = %q, want %q", e.Field, tt.field)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not start with %q", err, tt.want)
			}
		})
	}
}

func TestDateOf(t *testing.T) {
	for _, tt := range []struct {
		epoch int64
		want  string
	}{{0, "19700101"}, {1700000000, "20231114"}, {1700006399, "20231114"}, {1699999999, "20231114"}, {951782400, "20000229"}} {
		if got := DateOf(tt.epoch); got != tt.want {
			t.Errorf("DateOf(%d) = %q, want %q", tt.epoch, got, tt.want)
		}
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    Mode
		wantErr string
	}{
		{in: "0644", want: 0o644},
		{in: "644", want: 0o644},
		{in: "0o755", want: 0o755},
		{in: "0O755", want: 0o755},
		{in: "0", want: 0},
		{in: "0000", want: 0},
		{in: "00644", want: 0o644},
		{in: "4755", want: 0o4755},
		{in: "07777", want: 0o7777},
		{in: "", wantErr: `"" is not an octal mode`},
		{in: "0o", wantErr: `"0o" is not an octal mode`},
		{in: "0o99", wantErr: `"0o99" is not an octal mode; write octal digits (0 to 7) in quotes, like "0644"`},
		{in: "9", wantErr: "is not an octal mode"},
		{in: "0x1ff", wantErr: "is not an octal mode"},
		{in: "-644", wantErr: "is not an octal mode"},
		{in: "+644", wantErr: "is not an octal mode"},
		{in: " 644", wantErr: "is not an octal mode"},
		{in: "0o0o644", wantErr: "is not an octal mode"},
		{in: "rwxr-xr-x", wantErr: "is not an octal mode"},
		{in: "10000", wantErr: `"10000" is out of range; a mode is at most "07777"`},
		{in: "17777", wantErr: "is out of range"},
		{in: "77777777777777777777777777", wantErr: "is out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMode(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMode(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseMode(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			// String gives back what ParseMode reads as the same mode.
			if again, err := ParseMode(got.String()); err != nil || again != got {
				t.Errorf("ParseMode(%q) = %v, %v", got.String(), again, err)
			}
		})
	}
	if got := Mode(0o644).String(); got != "0644" {
		t.Errorf("Mode(0o644).String() = %q", got)
	}
	if got := Mode(0o4755).String(); got != "4755" {
		t.Errorf("Mode(0o4755).String() = %q", got)
	}
}

func TestParsePlatform(t *testing.T) {
	tests := []struct {
		in      string
		want    Platform
		wantErr string
	}{
		{in: "linux/amd64", want: Platform{OS: "linux", Arch: "amd64"}},
		{in: "linux/arm64", want: Platform{OS: "linux", Arch: "arm64"}},
		{in: "linux/arm64/v8", want: Platform{OS: "linux", Arch: "arm64", Variant: "v8"}},
		{in: "linux/arm/v7", want: Platform{OS: "linux", Arch: "arm", Variant: "v7"}},
		{in: "linux/amd64/v3", want: Platform{OS: "linux", Arch: "amd64", Variant: "v3"}},
		{in: "linux/386", want: Platform{OS: "linux", Arch: "386"}},
		{in: "linux/s390x", want: Platform{OS: "linux", Arch: "s390x"}},
		{in: "linux/ppc64le", want: Platform{OS: "linux", Arch: "ppc64le"}},
		{in: "linux/riscv64", want: Platform{OS: "linux", Arch: "riscv64"}},
		{in: "windows/amd64", want: Platform{OS: "windows", Arch: "amd64"}},
		{in: "freebsd/arm64", want: Platform{OS: "freebsd", Arch: "arm64"}},
		{in: "", wantErr: `"" is not a platform; write os/arch`},
		{in: "linux", wantErr: `"linux" is not a platform`},
		{in: "linux/", wantErr: "is not a platform"},
		{in: "/amd64", wantErr: "is not a platform"},
		{in: "linux/amd64/", wantErr: "is not a platform"},
		{in: "linux//amd64", wantErr: "is not a platform"},
		{in: "linux/arm/v7/x", wantErr: "is not a platform"},
		{in: "macos/arm64", wantErr: `unknown operating system "macos" (Go and OCI call it darwin)`},
		{in: "Linux/amd64", wantErr: `unknown operating system "Linux" (Go and OCI call it linux)`},
		{in: "plan10/amd64", wantErr: `unknown operating system "plan10"; use a GOOS value`},
		{in: "linux/x86_64", wantErr: `unknown architecture "x86_64" (Go and OCI call it amd64)`},
		{in: "linux/aarch64", wantErr: `(Go and OCI call it arm64)`},
		{in: "linux/armv7", wantErr: `(Go and OCI call it arm (variant v7))`},
		{in: "linux/sparc", wantErr: `unknown architecture "sparc"; use a GOARCH value`},
		{in: "linux/arm/v9", wantErr: `unknown variant "v9" for arm; use one of v5, v6, v7, v8`},
		{in: "linux/386/v1", wantErr: "architecture 386 takes no variant; write linux/386"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePlatform(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePlatform(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParsePlatform(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "/etc/motd", want: "/etc/motd"},
		{in: "/srv//www/", want: "/srv/www"},
		{in: "/a/./b/../c", want: "/a/c"},
		{in: "/../../etc", want: "/etc"},
		{in: "//x", want: "/x"},
		{in: "/a b/c", want: "/a b/c"},
		{in: "/.well-known", want: "/.well-known"},
		{in: "/a/wh.x", want: "/a/wh.x"},
		{in: "/a/.wh", want: "/a/.wh"},
		{in: "", wantErr: "empty path; give an absolute path like /etc/motd"},
		{in: "etc/motd", wantErr: `"etc/motd" is not absolute; image paths start with /, like /etc/motd`},
		{in: "./etc/motd", wantErr: "like /etc/motd"},
		{in: "/", wantErr: `"/" is the root directory`},
		{in: "//", wantErr: "is the root directory"},
		{in: "/a/..", wantErr: "is the root directory"},
		{in: "/..", wantErr: "is the root directory"},
		{in: "/etc/.wh.motd", wantErr: "names starting with .wh. are reserved for whiteouts"},
		{in: "/.wh..wh..opq", wantErr: "reserved for whiteouts"},
		{in: "/a/.wh.b/c", wantErr: "reserved for whiteouts"},
		{in: "/a\x00b", wantErr: "NUL byte"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CleanPath(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("CleanPath(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("CleanPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestCapability(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"cap_chown", 0, true},
		{"cap_net_bind_service", 10, true},
		{"CAP_NET_BIND_SERVICE", 10, true},
		{"net_bind_service", 10, true},
		{"Net_Raw", 13, true},
		{"cap_setfcap", 31, true},
		{"cap_checkpoint_restore", 40, true},
		{"cap_bind_port", 0, false},
		{"cap_", 0, false},
		{"", 0, false},
		{"cap_cap_chown", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := Capability(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Capability(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
	// Every number from 0 to the highest is named once.
	seen := map[int]string{}
	for name, n := range capabilities {
		if other, dup := seen[n]; dup {
			t.Errorf("%s and %s are both %d", name, other, n)
		}
		seen[n] = name
	}
	for i := range len(seen) {
		if _, ok := seen[i]; !ok {
			t.Errorf("no capability has number %d", i)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    *Error
		want string
	}{
		{&Error{File: "repro.yaml", Pos: Pos{Line: 14, Col: 5}, Field: "layers[1].contents[0].mode", Msg: `"0o99" is not an octal mode`}, `repro.yaml:14:5: layers[1].contents[0].mode: "0o99" is not an octal mode`},
		{&Error{File: "repro.yaml", Pos: Pos{Line: 1, Col: 1}, Msg: "the spec is empty"}, "repro.yaml:1:1: the spec is empty"},
		{&Error{File: "repro.yaml", Field: "epoch", Msg: "bad"}, "repro.yaml: epoch: bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	list := ErrorList{tests[0].e, tests[1].e}
	if got, want := list.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("ErrorList.Error() = %q, want %q", got, want)
	}
}

func TestPosOf(t *testing.T) {
	s := parse(t, `version: 1
name: app
layers:
  - name: one
    contents:
      - path: /a
        content: x
config:
  env:
    PORT: "8080"
`, LoadOptions{})
	tests := []struct {
		field string
		want  Pos
	}{
		{"", Pos{Line: 1, Col: 1}},
		{"version", Pos{Line: 1, Col: 10}},
		{"layers", Pos{Line: 4, Col: 3}},
		{"layers[0]", Pos{Line: 4, Col: 5}},
		{"layers[0].contents[0].path", Pos{Line: 6, Col: 15}},
		{"layers[0].contents[0].mode", Pos{Line: 6, Col: 9}}, // absent: its entry
		{"layers[0].contents[9].mode", Pos{Line: 6, Col: 7}}, // no such entry: the list
		{"config.env.PORT", Pos{Line: 10, Col: 11}},          // a key with no dots
		{"config.labels.org.example", Pos{Line: 9, Col: 3}},  // absent map: config
		{"annotations.a", Pos{Line: 1, Col: 1}},              // absent: the document
		{"layers[0].contents[0]", Pos{Line: 6, Col: 9}},      // a mapping: its first key
		{"layers[0].contents[0].content", Pos{Line: 7, Col: 18}},
	}
	for _, tt := range tests {
		if got := s.PosOf(tt.field); got != tt.want {
			t.Errorf("PosOf(%q) = %v, want %v", tt.field, got, tt.want)
		}
	}
	e := s.ErrorAt("layers[0].contents[0].path", "bad %s", "path")
	if got, want := e.Error(), "repro.yaml:6:15: layers[0].contents[0].path: bad path"; got != want {
		t.Errorf("ErrorAt = %q, want %q", got, want)
	}
	// A spec made by hand, with no positions, still makes errors.
	if got, want := (&Spec{File: "x.yaml"}).ErrorAt("name", "bad").Error(), "x.yaml: name: bad"; got != want {
		t.Errorf("ErrorAt on a bare spec = %q, want %q", got, want)
	}
}

func TestErrorsSortedAndBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nname: app\nlayers:\n  - contents:\n")
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&b, "      - path: rel%d\n        content: x\n", i)
	}
	b.WriteString("config: {stopSignal: nope}\n")
	_, err := Parse("repro.yaml", "/ctx", []byte(b.String()), LoadOptions{})
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %v is not an ErrorList", err)
	}
	if len(list) != maxErrors+1 {
		t.Fatalf("%d errors, want %d and a summary", len(list), maxErrors)
	}
	for i := 1; i < maxErrors; i++ {
		if list[i].Pos.Line < list[i-1].Pos.Line {
			t.Errorf("errors out of order: %v before %v", list[i-1], list[i])
		}
	}
	if got := list[maxErrors].Error(); !strings.Contains(got, "and 11 more problems") {
		t.Errorf("last line %q does not count the rest", got)
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	// A decoding error (mode) does not hide the validation errors of
	// other fields, and no field is reported twice.
	msg := parseErr(t, `version: 1
name: app
layers:
  - contents:
      - path: etc/a
        content: x
        mode: "9"
      - path: /b
        type: symlink
config:
  stopSignal: kill
`, LoadOptions{})
	want := []string{
		`repro.yaml:5:15: layers[0].contents[0].path: "etc/a" is not absolute`,
		`repro.yaml:7:15: layers[0].contents[0].mode: "9" is not an octal mode`,
		`repro.yaml:8:9: layers[0].contents[1].target: a symlink needs a target`,
		`repro.yaml:11:15: config.stopSignal: "kill" is not a signal; write SIGKILL`,
	}
	lines := strings.Split(msg, "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), msg)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], want[i])
		}
	}
}

func TestValidValues(t *testing.T) {
	const head = "version: 1\nname: app\n"
	for _, tt := range []struct{ name, spec string }{
		{"names", head[:11] + "name: a.b_c__d--e9\n"},
		{"signals", head + "config: {stopSignal: SIGRTMIN+3}\n"},
		{"signal number", head + "config: {stopSignal: \"9\"}\n"},
		{"ports", head + "config: {exposedPorts: [\"1\", \"65535/sctp\"]}\n"},
		{"user", head + "config: {user: \"app:app\"}\n"},
		{"epoch git", head + "epoch: git\n"},
		{"trailing document marker", head + "---\n"},
		{"leading document marker", "---\n" + head},
		{"base scratch", head + "base: scratch\n"},
		{"excludes", head + "layers: [{contents: [{path: /a, source: a/, exclude: ['**', '**/x/**', '*.[ch]', 'dir/']}]}]\n"},
		{"capabilities any case", head + "layers: [{contents: [{path: /a, source: a, capabilities: [CAP_NET_RAW, net_admin]}]}]\n"},
		{"remove with nothing else", head + "layers: [{contents: [{path: /a, type: remove}]}]\n"},
		{"symlink relative target", head + "layers: [{contents: [{path: /a, type: symlink, target: ../b}]}]\n"},
		{"same path in two layers", head + "layers: [{contents: [{path: /a, content: x}]}, {contents: [{path: /a, type: remove}]}]\n"},
	} {
		t.Run(tt.name, func(t *testing.T) { parse(t, tt.spec, LoadOptions{}) })
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "repro.yaml"), LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "no such spec file") {
		t.Fatalf("Load = %v, want a missing-file error", err)
	}
	if k := fault.KindOf(err); k != fault.BadInput {
		t.Errorf("kind %v, want bad input", k)
	}
}

// TestLoadDirectory: a directory given as the spec is named so, with the
// spec it holds, if any (it said "not a regular file").
func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		spec, want string
		write      bool
	}{
		{"", "a spec is a file, like repro.yaml", false},
		{filepath.Join(dir, "repro.yaml"), "the spec in it is " + filepath.Join(dir, "repro.yaml"), true},
	} {
		if tc.write {
			if err := os.WriteFile(tc.spec, []byte("version: 1\nname: a\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err := Load(dir, LoadOptions{})
		var de *DirError
		if !errors.As(err, &de) || de.Spec != tc.spec || fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), dir+" is a directory, not a spec; "+tc.want) {
			t.Errorf("Load(dir) = %v (kind %v), want a bad-input DirError with spec %q and %q", err, fault.KindOf(err), tc.spec, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for in, want := range map[string]int{"": 0, "format: 1\n": 1, "format: 2\n": 2} {
		if s := parse(t, "version: 1\nname: app\n"+in, LoadOptions{}); s.Format != want {
			t.Errorf("%q: format %d, want %d", in, s.Format, want)
		}
	}
	for _, bad := range []string{"0", "3", "two", "1.5", "-1"} {
		msg := parseErr(t, "version: 1\nname: app\nformat: "+bad+"\n", LoadOptions{})
		if !strings.HasPrefix(msg, "repro.yaml:3:9: format: ") {
			t.Errorf("format: %s: message %q does not name repro.yaml:3:9 and format", bad, msg)
		}
	}
}

func TestLines(t *testing.T) {
	text := `version: 1
name: app
layers:
  - name: one            # line 4
    contents:
      - path: /etc/motd
        content: |
          hello
          world
  # a comment
  - name: two            # line 11
    contents: [{path: /a, content: "a"}]
config:                  # line 13
  cmd: [x]
annotations: {a: b}
accounts:                # line 16
  users: [{name: u, uid: 1, gid: 1}]
`
	s := parse(t, text, LoadOptions{})
	for _, tc := range []struct {
		field       string
		first, last int
	}{
		{"layers[0]", 4, 10},
		{"layers[1]", 11, 12},
		{"layers[0].contents[0].content", 7, 10},
		{"config", 14, 14},
		{"accounts", 17, 0},
	} {
		first, last, ok := s.Lines(tc.field)
		if !ok || first != tc.first || last != tc.last {
			t.Errorf("Lines(%s) = %d, %d, %v; want %d, %d", tc.field, first, last, ok, tc.first, tc.last)
		}
	}
	if _, _, ok := s.Lines("layers[2]"); ok {
		t.Error("Lines of a layer that is not there")
	}
}

func TestContext(t *testing.T) {
	const head = "version: 1\nname: x\n"
	for _, tc := range []struct{ context, dir, specPath string }{
		{"", "/ctx/a/b", "repro.yaml"},
		{"context: .\n", "/ctx/a/b", "repro.yaml"},
		{"context: ..\n", "/ctx/a", "b/repro.yaml"},
		{"context: ../..\n", "/ctx", "a/b/repro.yaml"},
		{"context: ../../\n", "/ctx", "a/b/repro.yaml"},
	} {
		s, err := Parse("repro.yaml", "/ctx/a/b", []byte(head+tc.context), LoadOptions{})
		if err != nil {
			t.Fatalf("%q: %v", tc.context, err)
		}
		if s.Dir != tc.dir || s.SpecDir != "/ctx/a/b" || s.SpecPath() != tc.specPath {
			t.Errorf("%q: Dir %q SpecDir %q SpecPath %q, want %q /ctx/a/b %q", tc.context, s.Dir, s.SpecDir, s.SpecPath(), tc.dir, tc.specPath)
		}
	}
	for _, c := range []string{`""`, "sub", "../sub", "/abs", "../x/..", "./.."} {
		msg := parseErr(t, head+"context: "+c+"\n", LoadOptions{})
		if !strings.Contains(msg, "repro.yaml:3:10: context:") || !strings.Contains(msg, "its parents, written as .. segments") {
			t.Errorf("context: %s: %s", c, msg)
		}
	}
}

// TestVersionNotANumber: a version that is not a number is answered with
// the field's own example, not a generic 0 (which is no valid version).
func TestVersionNotANumber(t *testing.T) {
	msg := parseErr(t, "version: \"one\"\nname: app\n", LoadOptions{})
	if want := `repro.yaml:1:10: version: "one" is not a whole number from 0 to 2147483647; write the number itself, like version: 1`; msg != want {
		t.Errorf("got %q, want %q", msg, want)
	}
}
