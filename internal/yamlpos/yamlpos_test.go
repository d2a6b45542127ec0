package yamlpos

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type doc struct {
	Name  string            `yaml:"name"`
	Items []string          `yaml:"items"`
	Map   map[string]string `yaml:"map"`
	Sub   *sub              `yaml:"sub"`
}

type sub struct {
	N  int   `yaml:"n" required:"true"`
	B  bool  `yaml:"b"`
	V  int   `yaml:"v" example:"1"`
	Ns []int `yaml:"ns" example:"[1, 2]"`
}

func decode(t *testing.T, src string) (*doc, *Decoder) {
	t.Helper()
	root, e := Parse("t.yaml", []byte(src), ParseOptions{Empty: "empty", SecondDocument: "second"})
	if e != nil {
		t.Fatalf("Parse: %v", e)
	}
	d := NewDecoder("t.yaml", root, &Schema{Places: []Place{}})
	var v doc
	d.Decode(root, &v)
	return &v, d
}

func TestDecodeLocatesEveryProblem(t *testing.T) {
	_, d := decode(t, "name: a\nitmes: [x]\nsub: {n: x, b: maybe}\nmap: [1]\n")
	want := []string{
		`t.yaml:2:1: itmes: unknown field; did you mean "items"?`,
		`t.yaml:3:10: sub.n: "x" is not a whole number from 0 to 2147483647; write the number itself, like 0`,
		`t.yaml:3:16: sub.b: "maybe" is not a boolean; write true or false`,
		`t.yaml:4:6: map: expected a mapping of names to values, found a list; write one name: value per line, indented under map:`,
	}
	if got := d.Errs.Error(); got != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if p := d.At("sub.n"); p != (Pos{Line: 3, Col: 10}) {
		t.Errorf("At(sub.n) = %v", p)
	}
	if p := d.At("items[7]"); p != (Pos{Line: 1, Col: 1}) {
		t.Errorf("At(items[7]) = %v, want the document's start (items never decoded)", p)
	}
}

// TestDecodeNumberExample: a number that is not one is answered with the
// field's example tag (version: 1), not a generic 0; an item of a list of
// numbers, which the tag does not show alone, with 0.
func TestDecodeNumberExample(t *testing.T) {
	_, d := decode(t, "sub: {n: 1, v: one, ns: [x]}\n")
	want := []string{
		`t.yaml:1:16: sub.v: "one" is not a whole number from 0 to 2147483647; write the number itself, like v: 1`,
		`t.yaml:1:26: sub.ns[0]: "x" is not a whole number from 0 to 2147483647; write the number itself, like 0`,
	}
	if got := d.Errs.Error(); got != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestRequiredAndMerge(t *testing.T) {
	v, d := decode(t, "base: &b {b: true}\n")
	_ = v
	if len(d.Errs) != 1 || !strings.Contains(d.Errs[0].Msg, "unknown field") {
		t.Errorf("errors %v", d.Errs)
	}
	root, _ := Parse("t.yaml", []byte("sub: {b: true}\n"), ParseOptions{})
	d = NewDecoder("t.yaml", root, nil)
	d.Decode(root, &doc{})
	if got := d.Errs.Error(); got != "t.yaml:1:6: sub.n: required field is missing; add it" {
		t.Errorf("errors %q", got)
	}
}

// TestAliasBudgetCountsBytes is the alias that escaped a node budget: a
// reference to a 1 MiB scalar, used 2,000 times, is 2 GB of values from a
// 1 MiB file. It must be refused, quickly, at a place in the file.
func TestAliasBudgetCountsBytes(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	src := "name: &big " + big + "\nitems: [" + strings.TrimSuffix(strings.Repeat("*big, ", 2000), ", ") + "]\n"
	start := time.Now()
	_, d := decode(t, src)
	if !d.Exhausted() {
		t.Fatal("2 GB of aliased values decoded")
	}
	if len(d.Errs) != 1 || !strings.Contains(d.Errs[0].Msg, "the aliases (*name) in this file expand to too much") || d.Errs[0].Pos.Line != 2 {
		t.Errorf("errors %v", d.Errs)
	}
	t.Logf("took %v", time.Since(start))
	// Modest use of aliases passes, and a big document without aliases
	// never reaches the limit.
	if _, d := decode(t, "name: &n "+big+"\nitems: [*n, *n, *n]\n"); len(d.Errs) != 0 {
		t.Errorf("three uses of an alias refused: %v", d.Errs)
	}
	if _, d := decode(t, "items: ["+strings.TrimSuffix(strings.Repeat("a,", 1<<18), ",")+"]\n"); len(d.Errs) != 0 {
		t.Errorf("a 256Ki-item list without aliases refused: %v", d.Errs)
	}
}

func TestAliasBudgetNestedLists(t *testing.T) {
	// Nine levels of ten aliases: 10^9 leaves from a few hundred bytes.
	var gen func(k int) string
	gen = func(k int) string {
		if k == 0 {
			return "&l0 [" + strings.TrimSuffix(strings.Repeat("x, ", 10), ", ") + "]"
		}
		return fmt.Sprintf("&l%d [%s%s]", k, gen(k-1), strings.Repeat(fmt.Sprintf(", *l%d", k-1), 9))
	}
	root, e := Parse("t.yaml", []byte("l: "+gen(8)+"\n"), ParseOptions{})
	if e != nil {
		t.Fatal(e)
	}
	var v struct {
		L [][][][][][][][][]string `yaml:"l"`
	}
	d := NewDecoder("t.yaml", root, nil)
	start := time.Now()
	d.Decode(root, &v)
	if !d.Exhausted() {
		t.Fatal("10^9 aliased leaves decoded")
	}
	t.Logf("took %v", time.Since(start))
}

func TestReadFileLimits(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse 1 GiB file: refused from its size, nothing read.
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := ReadFile(big, 1<<20); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("1 GiB file: %v, want ErrTooLarge naming the limit", err)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A FIFO with no writer: opening it to read would wait for ever.
	if _, err := ReadFile(fifo, 1<<20); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "FIFO") {
		t.Errorf("FIFO: %v, want ErrNotRegular", err)
	}
	if _, err := ReadFile("/dev/zero", 1<<20); !errors.Is(err, ErrNotRegular) {
		t.Errorf("/dev/zero: %v, want ErrNotRegular", err)
	}
	sock := filepath.Join(dir, "s.yaml")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := ReadFile(sock, 1<<20); err == nil {
		t.Error("a socket was read")
	}
	ok := filepath.Join(dir, "ok.yaml")
	os.WriteFile(ok, []byte("name: a\n"), 0o644)
	if b, err := ReadFile(ok, 8); err != nil || string(b) != "name: a\n" {
		t.Errorf("ReadFile at the limit: %q, %v", b, err)
	}
	if _, err := ReadFile(ok, 7); !errors.Is(err, ErrTooLarge) {
		t.Errorf("one byte over: %v", err)
	}
}
