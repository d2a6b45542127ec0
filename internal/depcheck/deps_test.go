package depcheck

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/reprobuild/repro"

// allowed lists, for each package of the module, the module packages it
// may import. Keep it equal to the table in README.md: change both on
// purpose, together.
var allowed = map[string][]string{
	"cmd/repro":                   {"*"},
	"cmd/repro/e2e":               {},
	"pkg/fault":                   {},
	"internal/canonical":          {},
	"internal/netx":               {},
	"internal/testtool":           {},
	"internal/depcheck":           {},
	"pkg/vcs":                     {},
	"pkg/compress":                {},
	"pkg/spec":                    {"pkg/fault", "internal/yamlpos"},
	"internal/yamlpos":            {},
	"pkg/spec/internal/genschema": {"pkg/spec"},
	"pkg/imageref":                {"pkg/fault"},
	"pkg/layer":                   {"pkg/compress", "internal/glob", "internal/rawfile"},
	"pkg/cache":                   {"pkg/fault"},
	"pkg/layercache":              {"pkg/layer", "pkg/compress", "internal/atomicfs", "internal/rawfile"},
	"pkg/base":                    {"pkg/cache", "pkg/compress", "pkg/fault", "pkg/imageref", "pkg/rootfs"},
	"pkg/lock":                    {"pkg/apt", "pkg/base", "pkg/cache", "pkg/fault", "pkg/spec", "internal/yamlpos"},
	"pkg/lock/locktest":           {},
	"pkg/apt":                     {"pkg/cache", "pkg/compress", "pkg/fault", "pkg/layer"},
	"pkg/rootfs":                  {"pkg/fault"},
	"internal/hostile":            {},
	"pkg/diff":                    {"pkg/imageref", "pkg/rootfs"},
	"pkg/disk":                    {"pkg/rootfs", "pkg/fault", "pkg/compress", "pkg/imageref", "internal/atomicfs", "internal/units"},
	"pkg/disk/internal/initprog":  {},
	"pkg/systemd":                 {},
	"pkg/secrets":                 {"internal/glob"},
	"internal/glob":               {},
	"internal/units":              {},
	"internal/rawfile":            {},
	"internal/atomicfs":           {"pkg/fault"},
	"pkg/accounts":                {"pkg/base", "pkg/fault", "pkg/layer", "pkg/spec"},
	"pkg/build":                   {"pkg/spec", "pkg/accounts", "pkg/systemd", "pkg/layer", "pkg/cache", "pkg/base", "pkg/compress", "pkg/fault", "pkg/imageref", "pkg/output", "internal/canonical", "pkg/secrets", "pkg/apt", "pkg/lock", "pkg/vcs", "pkg/attest", "pkg/layercache", "pkg/sign"},
	"pkg/layout":                  {"pkg/fault", "internal/canonical", "internal/atomicfs"},
	"pkg/output":                  {"pkg/imageref", "pkg/layer", "pkg/layout", "pkg/fault", "internal/canonical", "internal/atomicfs"},
	"pkg/imagetest":               {"pkg/rootfs", "pkg/imageref", "pkg/fault", "internal/yamlpos"},
	"pkg/gc":                      {"pkg/imageref", "pkg/layout", "pkg/fault", "internal/units"},
	"pkg/attest":                  {"pkg/rootfs", "pkg/spec", "pkg/compress", "pkg/fault", "pkg/imageref", "internal/canonical"},
	"pkg/verify":                  {"pkg/build", "pkg/diff", "pkg/sign", "pkg/attest", "pkg/compress", "pkg/fault", "pkg/imageref", "pkg/output", "pkg/spec"},
	"pkg/sign":                    {"pkg/attest", "pkg/imageref", "pkg/layout", "pkg/fault"},
	"specs/examples/go-server":    {},
}

// exclusive lists third-party import prefixes that only the given module
// packages may import.
var exclusive = map[string][]string{
	"github.com/spf13/pflag":   {"cmd/repro"},
	"github.com/klauspost/":    {"pkg/compress"},
	"github.com/sigstore/":     {"pkg/sign"},
	"gopkg.in/yaml.v3":         {"internal/yamlpos"},
	"github.com/spf13/cobra":   {},
	"github.com/urfave/cli":    {},
	"github.com/docker/docker": {},
	"github.com/containerd/":   {},
}

type pkg struct {
	Name        string
	ImportPath  string
	Dir         string
	GoFiles     []string
	Imports     []string
	TestImports []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

func TestImportTable(t *testing.T) {
	for _, p := range listPackages(t) {
		name := rel(p.ImportPath)
		ok, known := allowed[name]
		if !known {
			t.Errorf("%s is not in the import table; add it to allowed here and to the package map in README.md", name)
			continue
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"/") {
				dep := rel(imp)
				if !contains(ok, "*") && !contains(ok, dep) {
					t.Errorf("%s imports %s, which the import table does not allow", name, dep)
				}
				if strings.HasPrefix(dep, "cmd/") {
					t.Errorf("%s imports the command %s", name, dep)
				}
				continue
			}
			for prefix, owners := range exclusive {
				if strings.HasPrefix(imp, prefix) && !contains(owners, name) {
					t.Errorf("%s imports %s; only %v may", name, imp, owners)
				}
			}
		}
	}
}

// TestLibrariesReadNoEnvironment checks that packages under pkg/ and internal/ (test
// helpers aside) never read the environment or the clock: cmd/repro reads
// them once and passes values down. Programs (package main, such as the
// initramfs's /init that pkg/disk embeds) are not libraries.
func TestLibrariesReadNoEnvironment(t *testing.T) {
	forbidden := map[string]bool{
		"os.Getenv": true, "os.LookupEnv": true, "os.Environ": true,
		"time.Now": true, "time.Since": true, "os.Getwd": true, "os.UserCacheDir": true,
	}
	var found []string
	for _, p := range listPackages(t) {
		name := rel(p.ImportPath)
		library := strings.HasPrefix(name, "pkg/") || strings.HasPrefix(name, "internal/")
		if !library || p.Name == "main" || name == "internal/testtool" || name == "internal/depcheck" || strings.Contains(name, "/internal/genschema") {
			continue
		}
		for _, f := range p.GoFiles {
			path := filepath.Join(p.Dir, f)
			file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && forbidden[id.Name+"."+sel.Sel.Name] {
					found = append(found, name+"/"+f+": "+id.Name+"."+sel.Sel.Name)
				}
				return true
			})
		}
	}
	sort.Strings(found)
	for _, f := range found {
		t.Errorf("%s: library packages take the environment and the clock from cmd/repro", f)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
