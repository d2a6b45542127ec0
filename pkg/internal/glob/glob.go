// Package glob matches slash-separated paths against repro's globs: the
// segments of path.Match, plus ** for zero or more whole segments, and a
// trailing / that matches directories only. exclude patterns (package
// layer) and secrets.allow paths (package secrets) share these rules.
package glob

import (
	"path"
	"strings"
)

// Match reports whether name (slash-separated, no leading slash needed)
// matches pattern. isDir says whether name is a directory, for patterns
// that end in /.
func Match(pattern, name string, isDir bool) bool {
	if strings.HasSuffix(pattern, "/") && !isDir {
		return false
	}
	return segments(split(pattern), split(name))
}

// split cuts a path into its non-empty segments: a//b is a/b.
func split(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func segments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for i := 0; i <= len(name); i++ {
				if segments(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
