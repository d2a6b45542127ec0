package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/layer"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "devel"

var versionCmd = &command{
	name:  "version",
	usage: "version [--json]",
	short: "print the version, the output format and the libraries that fix the bytes",
	long: `
Version prints repro's version and commit, the Go version it was built
with, the output-format version (the tar rule and the compression settings
together), and the versions of the compression libraries, which fix the
bytes of every layer.`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		return func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fault.Bad(fmt.Errorf("unexpected argument %q; version takes none", args[0]))
			}
			info := versionInfo()
			if g.json {
				return json.NewEncoder(g.stdout).Encode(info)
			}
			fmt.Fprintf(g.stdout, "repro %s\n", info.Version)
			fmt.Fprintf(g.stdout, "commit: %s\n", info.Commit)
			fmt.Fprintf(g.stdout, "go: %s\n", info.Go)
			fmt.Fprintf(g.stdout, "output formats (newest first; the default is %s):\n", info.FormatVersion)
			for _, f := range info.Formats {
				fmt.Fprintf(g.stdout, "  %s (--format %d): %s\n", f.Name, f.Number, f.Tar)
				for _, s := range f.Compression {
					fmt.Fprintf(g.stdout, "    %s\n", s)
				}
			}
			for _, l := range info.Libraries {
				fmt.Fprintf(g.stdout, "%s %s\n", l.Path, l.Version)
			}
			return nil
		}
	},
}

type library struct {
	Path    string `json:"path"`
	Version string `json:"version"`
}

type formatJSON struct {
	Name   string `json:"name"`
	Number int    `json:"number"`
	// Tar is the tar rule, Compression each algorithm's settings.
	Tar         string   `json:"tar"`
	Compression []string `json:"compression"`
}

type versionJSON struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
	// FormatVersion is the default output format (the newest).
	FormatVersion string `json:"formatVersion"`
	// Formats are every output format this repro writes, newest first.
	Formats     []formatJSON `json:"formats"`
	Compression []string     `json:"compression"`
	Libraries   []library    `json:"libraries"`
}

func versionInfo() versionJSON {
	v := versionJSON{
		Version: version, Commit: "unknown", Go: runtime.Version(),
		FormatVersion: compress.Newest.String(),
		Compression:   []string{compress.Gzip.FormatSettings(compress.Newest), compress.Zstd.FormatSettings(compress.Newest)},
	}
	for _, f := range compress.Formats {
		v.Formats = append(v.Formats, formatJSON{Name: f.String(), Number: int(f), Tar: layer.TarRule(f),
			Compression: []string{compress.Gzip.FormatSettings(f), compress.Zstd.FormatSettings(f)}})
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v.Commit = s.Value
		}
	}
	for _, path := range compress.Libraries {
		lv := "unknown"
		for _, d := range bi.Deps {
			if d.Path == path {
				lv = d.Version
			}
		}
		v.Libraries = append(v.Libraries, library{Path: path, Version: lv})
	}
	return v
}
