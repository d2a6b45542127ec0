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
// "a--b" or "---"; or one of repro's one-letter flags, "-f FILE", "-o REF",
// "-c FILE" (not "-X main.v" or "-trimpath", another program's).
var flagRE = regexp.MustCompile(`(^|[^-\w])(--[a-z]|-[fco]( |$))`)

// foreignFlagRE is another program's flag that a message tells the user
// to give it ("git fetch --unshallow"): not one of repro's.
var foreignFlagRE = regexp.MustCompile(`git [a-z]+ --[a-z]+`)

// flagAllowed are library files allowed to name a command's flags in
// their messages. A library returns a sentinel or typed error and
// cmd/repro words it (cache.ErrOffline, build.ErrPlatform,
// disk.ErrTooSmall, lock.MovedError, build.NeedsLockError,
// spec.UndefinedVarError, ...). The entry: pkg/disk/boot.go's is file
// content, not a message (the /etc/fstab that disk --boot writes says what
// wrote it, and its bytes are the disk's). The test fails on a stale entry.
var flagAllowed = map[string]bool{
	"pkg/disk/boot.go": true,
}

// logMethods are the slog methods whose message (or attribute value) a
// user reads.
var logMethods = map[string]bool{"Debug": true, "Info": true, "Warn": true, "Error": true}

// messageCall says whether a call makes a message a user reads: an error
// (fmt.Errorf, errors.New, a spec error placed at a field: ErrorAt), a
// log line (log.Warn and the like), a formatted string (fmt.Sprintf: a
// note, a hint) or a disk's record of a skipped path (skip).
func messageCall(sel *ast.SelectorExpr) bool {
	name := sel.Sel.Name
	if id, ok := sel.X.(*ast.Ident); ok && id.Name == "fmt" {
		return name == "Errorf" || name == "Sprintf"
	}
	if id, ok := sel.X.(*ast.Ident); ok && id.Name == "errors" {
		return name == "New"
	}
	return logMethods[name] || name == "ErrorAt" || name == "skip"
}

// TestLibrariesNameNoFlags checks that the messages made in packages under
// pkg/ and internal/ (errors, log lines, notes: messageCall) name no
// command-line flag: the
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
				if !messageCall(sel) {
					return true
				}
				for _, arg := range call.Args {
					lit, ok := arg.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					if s, err := strconv.Unquote(lit.Value); err == nil && flagRE.MatchString(foreignFlagRE.ReplaceAllString(s, "")) {
						found[key] = append(found[key], s)
					}
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
