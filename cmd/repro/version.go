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
			fmt.Fprintf(g.stdout, "output format: %s\n", info.FormatVersion)
			for _, s := range info.Compression {
				fmt.Fprintf(g.stdout, "  %s\n", s)
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

type versionJSON struct {
	Version       string    `json:"version"`
	Commit        string    `json:"commit"`
	Go            string    `json:"go"`
	FormatVersion string    `json:"formatVersion"`
	Compression   []string  `json:"compression"`
	Libraries     []library `json:"libraries"`
}

func versionInfo() versionJSON {
	v := versionJSON{
		Version: version, Commit: "unknown", Go: runtime.Version(),
		FormatVersion: compress.FormatVersion,
		Compression:   []string{compress.Gzip.Settings(), compress.Zstd.Settings()},
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
