package spec

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Platform is os/arch[/variant] as Go and OCI name them.
type Platform struct {
	OS      string
	Arch    string
	Variant string
}

// String is os/arch[/variant], the form v1.Platform.String and
// imageref.PlatformName write for a platform with these fields; written
// out here so that spec, which every package reads, does not depend on
// go-containerregistry.
func (p Platform) String() string {
	if p.Variant == "" {
		return p.OS + "/" + p.Arch
	}
	return p.OS + "/" + p.Arch + "/" + p.Variant
}

// knownOS and knownArch are GOOS and GOARCH values that OCI images use.
var knownOS = map[string]bool{
	"linux": true, "windows": true, "freebsd": true, "darwin": true,
	"netbsd": true, "openbsd": true, "solaris": true, "illumos": true,
	"aix": true, "dragonfly": true, "plan9": true, "wasip1": true, "js": true,
}

// knownArch maps each architecture to the variants it may carry.
var knownArch = map[string][]string{
	"amd64":    {"v1", "v2", "v3", "v4"},
	"arm64":    {"v8", "v8.0", "v8.1", "v8.2", "v8.3", "v8.4", "v8.5", "v8.6", "v8.7", "v8.8", "v8.9", "v9", "v9.0", "v9.1", "v9.2", "v9.3", "v9.4", "v9.5"},
	"arm":      {"v5", "v6", "v7", "v8"},
	"386":      nil,
	"ppc64le":  {"power8", "power9", "power10"},
	"ppc64":    {"power8", "power9", "power10"},
	"s390x":    nil,
	"riscv64":  {"rva20u64", "rva22u64", "rva23u64"},
	"mips64le": nil,
	"mips64":   nil,
	"mipsle":   nil,
	"mips":     nil,
	"loong64":  nil,
	"wasm":     nil,
}

// osAliases and archAliases are other names for a GOOS or GOARCH, for
// hints in messages.
var (
	osAliases   = map[string]string{"linux": "linux", "macos": "darwin", "osx": "darwin", "mac": "darwin", "win": "windows", "win32": "windows", "windows": "windows"}
	archAliases = map[string]string{"x86_64": "amd64", "x64": "amd64", "x86-64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armhf": "arm", "armel": "arm", "armv7": "arm (variant v7)", "armv7l": "arm (variant v7)", "armv6": "arm (variant v6)", "i386": "386", "i686": "386", "x86": "386", "ppc64el": "ppc64le"}
)

// ParsePlatform parses os/arch[/variant].
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return Platform{}, fmt.Errorf("%q is not a platform; write os/arch or os/arch/variant, like linux/amd64 or linux/arm/v7", s)
	}
	p := Platform{OS: parts[0], Arch: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	if !knownOS[p.OS] {
		hint := ""
		if alias := osAliases[strings.ToLower(p.OS)]; alias != "" {
			hint = fmt.Sprintf(" (Go and OCI call it %s)", alias)
		}
		return Platform{}, fmt.Errorf("%q: unknown operating system %q%s; use a GOOS value such as linux or windows", s, p.OS, hint)
	}
	variants, ok := knownArch[p.Arch]
	if !ok {
		hint := ""
		if alias := archAliases[strings.ToLower(p.Arch)]; alias != "" {
			hint = fmt.Sprintf(" (Go and OCI call it %s)", alias)
		}
		return Platform{}, fmt.Errorf("%q: unknown architecture %q%s; use a GOARCH value such as amd64, arm64, arm, 386, ppc64le, s390x or riscv64", s, p.Arch, hint)
	}
	if p.Variant != "" {
		if !slices.Contains(variants, p.Variant) {
			if len(variants) == 0 {
				return Platform{}, fmt.Errorf("%q: architecture %s takes no variant; write %s/%s", s, p.Arch, p.OS, p.Arch)
			}
			return Platform{}, fmt.Errorf("%q: unknown variant %q for %s; use one of %s", s, p.Variant, p.Arch, strings.Join(variants, ", "))
		}
	}
	return p, nil
}

// Epoch is the spec's epoch: a number of seconds, or the word git.
type Epoch struct {
	// Git means: the committer time of HEAD of the build context.
	Git     bool
	Seconds int64
}

// maxEpoch keeps timestamps inside what a ustar header holds without an
// extension (8^11 seconds, in the year 2242).
const maxEpoch = 1<<33 - 1

func parseEpoch(s string) (Epoch, error) {
	if s == "git" {
		return Epoch{Git: true}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > maxEpoch {
		return Epoch{}, fmt.Errorf("%q is not an epoch; give whole seconds since 1970 (0 to %d), or the word git", s, int64(maxEpoch))
	}
	return Epoch{Seconds: n}, nil
}

// Mode is a file's permission bits, with setuid, setgid and sticky.
type Mode uint32

// ParseMode parses an octal mode: "0644", "644" or "0o644".
func ParseMode(s string) (Mode, error) {
	t := s
	if strings.HasPrefix(t, "0o") || strings.HasPrefix(t, "0O") {
		t = t[2:]
	}
	n, err := strconv.ParseUint(t, 8, 32)
	if t == "" || err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%q is not an octal mode; write octal digits (0 to 7) in quotes, like \"0644\"", s)
	}
	if err != nil || n > 0o7777 {
		return 0, fmt.Errorf("%q is out of range; a mode is at most \"07777\"", s)
	}
	return Mode(n), nil
}

func (m Mode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// Formats are the output formats (format:) that a spec may name, newest
// first; package compress defines them, and a test in package build keeps
// the two lists equal.
var Formats = []int{2, 1}
