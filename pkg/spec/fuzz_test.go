package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// seedSpecs adds the example specs and the bad specs to f's corpus.
func seedSpecs(f *testing.F) {
	f.Helper()
	var files []string
	for _, pat := range []string{
		filepath.Join("..", "..", "specs", "examples", "*", "*.yaml"),
		filepath.Join(badspecsDir, "*.yaml"),
	} {
		m, err := filepath.Glob(pat)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		f.Fatal("no seed specs found")
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("version: 1\nname: a\nlayers: [{contents: [{path: /a, content: x}, {<<: *x}]}]\n"))
	f.Add([]byte("version: 1\nname: a\nx: &a [*a]\nlayers: &l [{contents: *l}]\n"))
}

// FuzzParse checks that Parse never panics, that every error it returns
// names the file and a place in it, and that a spec it accepts is stable:
// validating it again changes nothing, and writing it out as YAML and
// parsing that gives the same spec.
func FuzzParse(f *testing.F) {
	seedSpecs(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("repro.yaml", "/ctx", data, LoadOptions{})
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %v (%T) is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if e.File != "repro.yaml" || e.Pos.Line < 1 || e.Pos.Col < 1 || e.Msg == "" {
					t.Fatalf("error %q lacks a file, place or message", e)
				}
			}
			return
		}
		if s == nil {
			t.Fatal("Parse returned neither a spec nor an error")
		}

		// Validating a valid spec again finds nothing and changes nothing.
		again, err := Parse("repro.yaml", "/ctx", data, LoadOptions{})
		if err != nil {
			t.Fatalf("second Parse failed: %v", err)
		}
		d := &decoder{File: again.File, Schema: schema, Pos: again.pos, Keys: again.keys}
		(&validator{s: again, d: d}).validate()
		if len(d.Errs) > 0 {
			t.Fatalf("a valid spec fails validation again: %v", d.Errs)
		}
		if diff := cmp.Diff(s, again, ignorePos); diff != "" {
			t.Fatalf("validating again changed the spec (-first +second):\n%s", diff)
		}

		// Written out with its defaults, it parses to itself.
		out, ok := render(s)
		if !ok {
			return
		}
		s2, err := Parse("repro.yaml", "/ctx", out, LoadOptions{})
		if err != nil {
			t.Fatalf("the spec written out does not parse: %v\n%s", err, out)
		}
		if diff := cmp.Diff(s, s2, ignorePos); diff != "" {
			t.Fatalf("the spec written out parses differently (-first +second):\n%s\n%s", diff, out)
		}
	})
}

// render writes s out as YAML, every default spelled out. It reports false
// for specs whose strings YAML cannot carry as text.
func render(s *Spec) ([]byte, bool) {
	ok := true
	str := func(v string) string {
		if !utf8.ValidString(v) {
			ok = false
		}
		return v
	}
	strs := func(l []string) []any {
		out := make([]any, len(l))
		for i, v := range l {
			out[i] = str(v)
		}
		return out
	}
	smap := func(m map[string]string) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[str(k)] = str(v)
		}
		return out
	}
	top := map[string]any{"version": s.Version, "name": str(s.Name), "base": str(s.Base)}
	var plats []any
	for _, p := range s.Platforms {
		plats = append(plats, p.String())
	}
	top["platforms"] = plats
	if s.Epoch != nil {
		if s.Epoch.Git {
			top["epoch"] = "git"
		} else {
			top["epoch"] = s.Epoch.Seconds
		}
	}
	if s.Vars != nil {
		top["vars"] = smap(s.Vars)
	}
	if s.Annotations != nil {
		top["annotations"] = smap(s.Annotations)
	}
	if s.Tags != nil {
		top["tags"] = strs(s.Tags)
	}
	if s.Layers != nil {
		layers := []any{}
		for _, l := range s.Layers {
			contents := []any{}
			for _, c := range l.Contents {
				m := map[string]any{"path": str(c.Path), "type": str(c.Type)}
				for k, v := range map[string]string{"source": c.Source, "url": c.URL, "sha256": c.SHA256, "target": c.Target, "go": c.Go} {
					if v != "" {
						m[k] = str(v)
					}
				}
				if c.Content != nil {
					m["content"] = str(*c.Content)
				}
				if c.Exclude != nil {
					m["exclude"] = strs(c.Exclude)
				}
				if c.Capabilities != nil {
					m["capabilities"] = strs(c.Capabilities)
				}
				if c.LDFlags != nil {
					m["ldflags"] = strs(c.LDFlags)
				}
				if c.BuildTags != nil {
					m["tags"] = strs(c.BuildTags)
				}
				if c.Mode != nil {
					m["mode"] = c.Mode.String()
				}
				if c.UID != nil {
					m["uid"] = *c.UID
				}
				if c.GID != nil {
					m["gid"] = *c.GID
				}
				contents = append(contents, m)
			}
			lm := map[string]any{"name": str(l.Name)}
			if l.Contents != nil {
				lm["contents"] = contents
			}
			if l.Packages != nil {
				lm["packages"] = strs(l.Packages)
			}
			layers = append(layers, lm)
		}
		top["layers"] = layers
	}
	if a := s.Apt; a != nil {
		am := map[string]any{"keyring": str(a.Keyring)}
		if a.Sources != nil {
			srcs := []any{}
			for _, src := range a.Sources {
				m := map[string]any{"url": str(src.URL)}
				if src.Suites != nil {
					m["suites"] = strs(src.Suites)
				}
				if src.Components != nil {
					m["components"] = strs(src.Components)
				}
				srcs = append(srcs, m)
			}
			am["sources"] = srcs
		}
		if a.Prefer != nil {
			am["prefer"] = smap(a.Prefer)
		}
		if a.UsrMerge != nil {
			am["usrmerge"] = *a.UsrMerge
		}
		if a.Exclude != nil {
			am["exclude"] = strs(a.Exclude)
		}
		if a.Timezone != "" {
			am["timezone"] = str(a.Timezone)
		}
		if a.Snapshot != nil {
			sm := map[string]any{"url": str(a.Snapshot.URL)}
			if a.Snapshot.Timestamp != "" {
				sm["timestamp"] = str(a.Snapshot.Timestamp)
			}
			am["snapshot"] = sm
		}
		top["apt"] = am
	}
	if a := s.Accounts; a != nil {
		am := map[string]any{}
		if a.Groups != nil {
			gs := []any{}
			for _, g := range a.Groups {
				gs = append(gs, map[string]any{"name": str(g.Name), "gid": *g.GID})
			}
			am["groups"] = gs
		}
		if a.Users != nil {
			us := []any{}
			for _, u := range a.Users {
				us = append(us, map[string]any{"name": str(u.Name), "uid": *u.UID, "gid": *u.GID, "home": str(u.Home), "shell": str(u.Shell)})
			}
			am["users"] = us
		}
		top["accounts"] = am
	}
	c := s.Config
	config := map[string]any{}
	for k, v := range map[string][]string{"entrypoint": c.Entrypoint, "cmd": c.Cmd, "exposedPorts": c.ExposedPorts, "volumes": c.Volumes} {
		if v != nil {
			config[k] = strs(v)
		}
	}
	for k, v := range map[string]map[string]string{"env": c.Env, "labels": c.Labels} {
		if v != nil {
			config[k] = smap(v)
		}
	}
	for k, v := range map[string]string{"workingDir": c.WorkingDir, "user": c.User, "stopSignal": c.StopSignal} {
		if v != "" {
			config[k] = str(v)
		}
	}
	if len(config) > 0 {
		top["config"] = config
	}
	if !ok {
		return nil, false
	}
	out, err := yaml.Marshal(toNode(top))
	if err != nil {
		return nil, false
	}
	return out, true
}

// toNode builds the YAML node of v (maps with sorted keys, lists, strings,
// ints). Every string is double-quoted: yaml.v3's own encoder loses a lone
// newline written in block style.
func toNode(v any) *yaml.Node {
	switch v := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			n.Content = append(n.Content, toNode(k), toNode(v[k]))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range v {
			n.Content = append(n.Content, toNode(e))
		}
		return n
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: v}
	case int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v)}
	case int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v, 10)}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
	}
	panic(fmt.Sprintf("toNode: %T", v))
}

// FuzzCleanPath checks that what CleanPath accepts comes out clean,
// absolute, free of .. and whiteout names, never the root, and unchanged
// by cleaning again.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"/etc/motd", "/", "//", "/..", "/a/../..", "/./a/", "a/b", "", "/a//b/", "/.wh.x", "/a/.wh..wh..opq",
		"/a/b/../../c", "/\x00", "/a/.../b", "/ a /b ", "/..a/b..", "\\a\\b", "/a/./.", "/srv//www/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, err := CleanPath(p)
		if err != nil {
			if c != "" {
				t.Fatalf("CleanPath(%q) = %q with error %v", p, c, err)
			}
			return
		}
		if !strings.HasPrefix(c, "/") {
			t.Fatalf("CleanPath(%q) = %q: not absolute", p, c)
		}
		if c == "/" {
			t.Fatalf("CleanPath(%q) = %q: the root", p, c)
		}
		if strings.HasSuffix(c, "/") || strings.Contains(c, "//") {
			t.Fatalf("CleanPath(%q) = %q: not clean", p, c)
		}
		for _, seg := range strings.Split(c[1:], "/") {
			if seg == ".." || seg == "." || seg == "" {
				t.Fatalf("CleanPath(%q) = %q: holds segment %q", p, c, seg)
			}
			if strings.HasPrefix(seg, ".wh.") {
				t.Fatalf("CleanPath(%q) = %q: holds a whiteout name", p, c)
			}
		}
		if strings.ContainsRune(c, 0) {
			t.Fatalf("CleanPath(%q) = %q: holds NUL", p, c)
		}
		again, err := CleanPath(c)
		if err != nil || again != c {
			t.Fatalf("CleanPath(%q) = %q, but CleanPath(%q) = %q, %v", p, c, c, again, err)
		}
	})
}
