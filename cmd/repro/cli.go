package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/internal/netx"
	"github.com/reprobuild/repro/internal/units"
	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/disk"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imagetest"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/output"
	"github.com/reprobuild/repro/pkg/rootfs"
	"github.com/reprobuild/repro/pkg/sign"
	"github.com/reprobuild/repro/pkg/spec"
)

// command is one subcommand, in the style of cmd/go: a usage line, help
// text, its own flag set and a run function.
type command struct {
	name  string
	usage string // after "repro "
	short string
	long  string
	// flags registers the command's flags; it returns the function that
	// runs the command once they are parsed.
	flags func(fs *pflag.FlagSet, g *globals) func(ctx context.Context, args []string) error
}

// globals are the flags every command takes, and the process's streams.
type globals struct {
	quiet   bool
	json    bool
	verbose bool
	// timeout bounds a silent server, all tries together (internal/netx).
	timeout time.Duration
	// maxLayer bounds one layer's uncompressed size when an image is read
	// (pkg/rootfs): a gzip bomb is refused past it.
	maxLayer string
	stdout   io.Writer
	stderr   io.Writer
	log      *slog.Logger
	// status is what is drawn on the terminal for the work in progress,
	// if anything: the log clears it before writing.
	statusMu sync.Mutex
	status   clearer
}

// clearer is a drawing on the terminal that can take itself off the
// screen for a log line, to be drawn again below it.
type clearer interface {
	// writeAbove clears the drawing and writes b to w, with no draw
	// in between.
	writeAbove(w io.Writer, b []byte) (int, error)
}

// setStatus makes c the drawing the log clears; nil for none.
func (g *globals) setStatus(c clearer) {
	g.statusMu.Lock()
	defer g.statusMu.Unlock()
	g.status = c
}

var commands []*command

func init() {
	commands = []*command{buildCmd, cacheCmd, diffCmd, diskCmd, gcCmd, indexCmd, inspectCmd, keygenCmd, lockCmd, sbomCmd, signCmd, testCmd, verifyCmd, verifySignatureCmd, versionCmd}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	given := args
	args = globalsFirst(args)
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" && len(args) == 1 {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "help" {
		c := lookup(args[1])
		if c == nil {
			return usageError(given, stdout, stderr, fmt.Sprintf("repro help %s: unknown command; run repro help", args[1]))
		}
		fs, _ := newFlagSet(c, &globals{stdout: stdout, stderr: stderr})
		commandUsage(stdout, c, fs)
		return 0
	}
	c := lookup(args[0])
	if c == nil {
		if near := nearestCommand(args[0]); near != "" {
			return usageError(given, stdout, stderr, fmt.Sprintf("repro: unknown command %q; did you mean repro %s?", args[0], near))
		}
		return usageError(given, stdout, stderr, fmt.Sprintf("repro: unknown command %q; run repro help for the list", args[0]))
	}
	g := &globals{stdout: stdout, stderr: stderr}
	fs, runFn := newFlagSet(c, g)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			commandUsage(stdout, c, fs)
			return 0
		}
		return usageError(given, stdout, stderr, fmt.Sprintf("repro %s: %v\nrun repro help %s for usage", c.name, err, c.name))
	}
	g.log = newLogger(g)
	if g.timeout <= 0 {
		return usageError(given, stdout, stderr, fmt.Sprintf("repro %s: --timeout %s: give a positive duration, like 90s or 5m", c.name, g.timeout))
	}
	if n, err := units.ParseBytes(g.maxLayer); err != nil || n <= 0 {
		return usageError(given, stdout, stderr, fmt.Sprintf("repro %s: --max-layer-size %q: give a positive size, like 64GiB or 200GiB", c.name, g.maxLayer))
	} else {
		rootfs.MaxLayerSize = n
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = withNetwork(ctx, newNetwork(netx.Policy{Timeout: g.timeout, Log: g.log}))
	err := runFn(ctx, fs.Args())
	if errors.Is(err, rootfs.ErrLayerTooLarge) {
		err = fmt.Errorf("%w; raise the limit with --max-layer-size", err)
	}
	if errors.Is(err, base.ErrPinMismatch) {
		err = fmt.Errorf("%w; if the base was rebuilt on purpose, run repro lock --update", err)
	}
	return report(g, c, err)
}

// usageError prints msg, a usage mistake found before the command runs,
// on stderr and, when the arguments ask for --json (the flags may not
// have parsed), as the JSON error on stdout; it returns exit code 2.
func usageError(args []string, stdout, stderr io.Writer, msg string) int {
	fmt.Fprintln(stderr, msg)
	if wantsJSON(args) {
		first, _, _ := strings.Cut(msg, "\n")
		printJSONError(stdout, map[string]any{"error": first, "exitCode": int(fault.BadInput), "kind": fault.BadInput.String()})
	}
	return int(fault.BadInput)
}

// wantsJSON says whether args hold --json (or --json=true) before any "--".
func wantsJSON(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "--json=true", "--json=1":
			return true
		}
	}
	return false
}

func printJSONError(w io.Writer, out map[string]any) {
	json.NewEncoder(w).Encode(out)
}

// nearestCommand is the command whose name is within two edits of s
// (a typo: buidl, verfy), or "".
func nearestCommand(s string) string {
	best, bestD := "", 3
	for _, c := range commands {
		if d := edits(s, c.name); d < bestD {
			best, bestD = c.name, d
		}
	}
	return best
}

// edits is the Levenshtein distance between a and b, with a swap of two
// neighbours counted as one edit.
func edits(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// globalsFirst moves global flags given before the command (repro -q
// build) to just after it, where the command's flag set parses them.
func globalsFirst(args []string) []string {
	var lead []string
	for len(args) > 0 && isGlobalFlag(args[0]) {
		lead = append(lead, args[0])
		if (args[0] == "--timeout" || args[0] == "--max-layer-size") && len(args) > 1 { // its value follows
			lead = append(lead, args[1])
			args = args[1:]
		}
		args = args[1:]
	}
	if len(lead) == 0 || len(args) == 0 || args[0] == "help" {
		return args
	}
	return append(append([]string{args[0]}, lead...), args[1:]...)
}

func isGlobalFlag(arg string) bool {
	name, _, _ := strings.Cut(arg, "=")
	switch name {
	case "-q", "--quiet", "--json", "-v", "--verbose", "--timeout", "--max-layer-size":
		return true
	}
	return false
}

func newFlagSet(c *command, g *globals) (*pflag.FlagSet, func(context.Context, []string) error) {
	fs := pflag.NewFlagSet("repro "+c.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	runFn := c.flags(fs, g)
	fs.BoolVarP(&g.quiet, "quiet", "q", false, "print only results and errors")
	fs.BoolVar(&g.json, "json", false, "print machine-readable JSON on stdout")
	fs.BoolVarP(&g.verbose, "verbose", "v", false, "log debug detail to stderr")
	fs.DurationVar(&g.timeout, "timeout", netx.DefaultTimeout, "how long a silent registry or web server is waited for, all retries together (each single wait gets a third)")
	fs.StringVar(&g.maxLayer, "max-layer-size", "64GiB", "the largest a layer of an image read may expand to, uncompressed; a bigger one is refused as a likely gzip bomb")
	return fs, runFn
}

// report prints err, if any, and returns the exit code for it.
func report(g *globals, c *command, err error) int {
	if err == nil {
		return 0
	}
	var silent errSilent
	if errors.As(err, &silent) {
		return int(silent.kind)
	}
	kind := fault.KindOf(err)
	if errors.Is(err, context.Canceled) {
		msg := "interrupted; nothing was written"
		fmt.Fprintf(g.stderr, "repro %s: %s\n", c.name, msg)
		if g.json {
			printJSONError(g.stdout, map[string]any{"error": msg, "exitCode": int(fault.Operational), "kind": fault.Operational.String()})
		}
		return int(fault.Operational)
	}
	prefix, hint := flagWording(err)
	msg := prefix + err.Error()
	var list spec.ErrorList
	var one *spec.Error
	switch {
	case errors.As(err, &list), errors.As(err, &one):
		// Compiler style: file:line:col: field: message, one per line.
		fmt.Fprintln(g.stderr, msg)
	default:
		fmt.Fprintf(g.stderr, "repro %s: %s\n", c.name, msg)
	}
	if hint != "" {
		fmt.Fprintf(g.stderr, "repro %s: %s\n", c.name, hint)
		msg += "; " + hint
	}
	if g.json {
		out := map[string]any{"error": msg, "exitCode": int(kind), "kind": kind.String()}
		if host, timedOut := netx.HostOf(err); host != "" {
			out["host"] = host
			out["timedOut"] = timedOut
		}
		printJSONError(g.stdout, out)
	}
	return int(kind)
}

// flagWording names the flag behind a library's sentinel error: a prefix
// for the message, or a hint that follows it. Libraries name no flags.
func flagWording(err error) (prefix, hint string) {
	var moved *lock.MovedError
	var undefined *spec.UndefinedVarError
	var specDir *spec.DirError
	lockIt := "" // the command that pins what is missing
	if needs := (*build.NeedsLockError)(nil); errors.As(err, &needs) {
		lockIt = "run repro lock -f " + needs.Spec
	}
	orUnpinned := func(what string) string {
		if lockIt == "" {
			return "or pass --allow-unpinned " + what
		}
		return lockIt + ", or pass --allow-unpinned " + what
	}
	switch {
	case errors.Is(err, build.ErrNotLocked):
		// A stale lock's gaps are at their spec lines, compiler style.
		if at := (*spec.Error)(nil); errors.As(err, &at) {
			return "", lockIt + " (--locked builds only what the lock pins)"
		}
		return "--locked: ", lockIt
	case errors.Is(err, build.ErrNoToolchain):
		return "", orUnpinned("to compile with the go on PATH as it is (the build is then not reproducible)")
	case errors.Is(err, build.ErrPlatform):
		return "--platform ", ""
	case errors.Is(err, cache.ErrOffline):
		return "", "run once without --offline"
	case errors.Is(err, output.ErrOnePlatform):
		return "", "narrow the build with --platform, or use oci: or oci-archive: for an index"
	case errors.Is(err, build.ErrPartFormat):
		return "", "give index the --format the build was given"
	case errors.Is(err, build.ErrPartCompression):
		return "", "give index the --compression the build was given"
	case errors.Is(err, build.ErrCacheMismatch):
		return "--cache-verify: ", "build with --no-cache, and compare"
	case errors.As(err, &specDir):
		if specDir.Spec != "" {
			return "", "give the spec itself: -f " + specDir.Spec
		}
		return "", "give -f the spec file's path"
	case errors.Is(err, spec.ErrNoSpecFile):
		return "", "give its path with -f, or run repro in the directory holding repro.yaml"
	case errors.Is(err, disk.ErrOutputIsDir):
		return "", "-o names the disk file (one inside it, say)"
	case errors.Is(err, sign.ErrNothingSignable):
		return "", "write the image with -o oci:DIR[:TAG], or push it"
	case errors.Is(err, disk.ErrTooSmall):
		return "", "raise --size"
	case errors.Is(err, disk.ErrPackerLimit):
		return "", "run as root, or use --fs ext4"
	case errors.Is(err, imagetest.ErrNoPodman):
		return "", "give --podman"
	case timedOut(err):
		return "", "a slow server can be given longer with --timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		if host, _ := netx.HostOf(err); host != "" {
			return "", "nothing listens at " + host + ": check its host and port, and that the server is running"
		}
		return "", "the server refused the connection: check the host and port, and that the server is running"
	case errors.As(err, &undefined):
		return "", "pass --var " + undefined.Name + "=VALUE to give it"
	case errors.As(err, &moved):
		return "", "run repro lock --update -f " + moved.Spec + " to move to what it holds now"
	case errors.Is(err, build.ErrUnpinned):
		return "", orUnpinned("to resolve the tag now (the build is then not reproducible)")
	}
	return "", lockIt
}

// timedOut says whether err is a server that fell silent past the
// --timeout policy (internal/netx).
func timedOut(err error) bool {
	_, t := netx.HostOf(err)
	return t
}

func newLogger(g *globals) *slog.Logger {
	level := slog.LevelInfo
	switch {
	case g.verbose:
		level = slog.LevelDebug
	case g.quiet:
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(logWriter{g}, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `repro builds bit-for-bit reproducible OCI images from a declarative spec
(repro.yaml), with no daemon and no RUN steps.

Usage:
  repro <command> [flags]

Commands:
`)
	names := make([]string, 0, len(commands))
	for _, c := range commands {
		names = append(names, c.name)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-17s %s\n", n, lookup(n).short)
	}
	fmt.Fprint(w, `
Global flags, before or after the command:
  -q, --quiet    print only results and errors
  --json         print machine-readable JSON on stdout
  -v, --verbose  log debug detail to stderr
  --timeout D    how long a silent server is waited for, retries included
                 (default 90s; each single wait gets a third of it)
  --max-layer-size N
                 the largest a layer read from an image may expand to
                 (default 64GiB; a bigger one is refused as a gzip bomb)

Exit codes: 0 ok; 1 a check failed; 2 bad usage or input; 3 an operational
failure (network, disk, a fetched file that does not match its pin).

Run repro help <command> for a command's flags and examples.
`)
}

func commandUsage(w io.Writer, c *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: repro %s\n\n%s\n", c.usage, strings.TrimSpace(c.long))
	fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsages())
}
