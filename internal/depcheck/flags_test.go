package depcheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// flagRE is a command-line flag named in a message: "--offline", not
// "a--b" or "---".
var flagRE = regexp.MustCompile(`(^|[^-\w])--[a-z]`)

// flagAllowed are library files allowed to name a command's flags in
// their errors. None is: a library returns a sentinel or typed error and
// cmd/repro words it (cache.ErrOffline, build.ErrPlatform,
// disk.ErrTooSmall, lock.MovedError, ...). The test fails on a stale entry.
var flagAllowed = map[string]bool{}

// TestLibrariesNameNoFlags checks that errors made in packages under pkg/
// and internal/ (fmt.Errorf, errors.New) name no command-line flag: the
// library reports what went wrong, with a sentinel error where a caller
// needs to tell the case apart, and cmd/repro names its own flag for it.
func TestLibrariesNameNoFlags(t *testing.T) {
	found := map[string][]string{}
	for _, p := range listPackages(t) {
		name := rel(p.ImportPath)
		if !(strings.HasPrefix(name, "pkg/") || strings.HasPrefix(name, "internal/")) || p.Name == "main" || strings.Contains(name, "internal/genschema") {
			continue
		}
		for _, f := range p.GoFiles {
			path := filepath.Join(p.Dir, f)
			file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			key := name + "/" + f
			ast.Inspect(file, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkgID, ok := sel.X.(*ast.Ident)
				if !ok || !(pkgID.Name == "fmt" && sel.Sel.Name == "Errorf" || pkgID.Name == "errors" && sel.Sel.Name == "New") {
					return true
				}
				lit, ok := call.Args[0].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				if s, err := strconv.Unquote(lit.Value); err == nil && flagRE.MatchString(s) {
					found[key] = append(found[key], s)
				}
				return true
			})
		}
	}
	var keys []string
	for k := range found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !flagAllowed[k] {
			t.Errorf("%s names a flag in an error: %q; return a sentinel error (errors.Is) and let cmd/repro word it", k, found[k])
		}
	}
	for k := range flagAllowed {
		if found[k] == nil {
			t.Errorf("%s names no flag any more: remove it from flagAllowed", k)
		}
	}
}
