package apt

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/reprobuild/repro/pkg/fault"
)

// InstalledFrom reads what a base image (or an earlier layer) holds:
// files maps image paths to their content, for /var/lib/dpkg/status and
// each file of /var/lib/dpkg/status.d/ (other paths, and *.md5sums, are
// ignored). A stanza counts when its Status is "install ok installed" (or
// absent, as in distroless' status.d files). The result is sorted by name;
// of two stanzas for one name, the one in status.d wins.
func InstalledFrom(files map[string]io.Reader) ([]*Package, error) {
	byName := map[string]*Package{}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	// status first, so that status.d overrides it.
	sort.Slice(paths, func(i, j int) bool {
		ri, rj := statusRank(paths[i]), statusRank(paths[j])
		if ri != rj {
			return ri < rj
		}
		return paths[i] < paths[j]
	})
	for _, p := range paths {
		if statusRank(p) < 0 {
			continue
		}
		pkgs, err := ParseStatus(files[p])
		if err != nil {
			return nil, fault.Bad(fmt.Errorf("%s: %w", p, err))
		}
		for _, pkg := range pkgs {
			byName[pkg.Name] = pkg
		}
	}
	out := make([]*Package, 0, len(byName))
	for _, n := range sortedKeys(byName) {
		out = append(out, byName[n])
	}
	return out, nil
}

// statusRank is 0 for the status file, 1 for a status.d stanza file, and
// -1 for anything else.
func statusRank(p string) int {
	p = path.Clean("/" + p)
	switch {
	case p == "/var/lib/dpkg/status":
		return 0
	case path.Dir(p) == StatusDir && !strings.HasSuffix(p, ".md5sums") && !strings.HasPrefix(path.Base(p), "."):
		return 1
	}
	return -1
}

// ParseStatus reads a dpkg status file (or one status.d file) and returns
// its installed packages.
func ParseStatus(r io.Reader) ([]*Package, error) {
	var out []*Package
	err := scanStanzas(r, func(n int, v map[string]string) error {
		if st, ok := v[statusField]; ok {
			f := strings.Fields(st)
			if len(f) != 3 || f[2] != "installed" {
				return nil // removed, config-files, half-installed...
			}
		}
		p, err := fromParagraph(v)
		if err != nil {
			return fmt.Errorf("stanza %d: %w", n, err)
		}
		out = append(out, p)
		return nil
	})
	return out, err
}
