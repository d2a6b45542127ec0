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
// that end in /. Empty segments are ignored: a//b is a/b.
func Match(pattern, name string, isDir bool) bool {
	if strings.HasSuffix(pattern, "/") && !isDir {
		return false
	}
	return segments(split(pattern), split(name))
}

// split cuts a path into its non-empty segments.
func split(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// segments matches by dynamic programming over (pattern, name) suffixes,
// so that runs of ** cost O(len(pat) × len(name)), never exponential time.
func segments(pat, name []string) bool {
	// ok[i][j]: pat[i:] matches name[j:].
	ok := make([][]bool, len(pat)+1)
	for i := range ok {
		ok[i] = make([]bool, len(name)+1)
	}
	ok[len(pat)][len(name)] = true
	for i := len(pat) - 1; i >= 0; i-- {
		for j := len(name); j >= 0; j-- {
			if pat[i] == "**" {
				// ** matches zero segments, or one more and stays.
				ok[i][j] = ok[i+1][j] || (j < len(name) && ok[i][j+1])
				continue
			}
			if j < len(name) {
				if m, _ := path.Match(pat[i], name[j]); m {
					ok[i][j] = ok[i+1][j+1]
				}
			}
		}
	}
	return ok[0][0]
}
