package imagetest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprobuild/repro/internal/yamlpos"
	"github.com/reprobuild/repro/pkg/fault"
)

func TestAliasBombRefused(t *testing.T) {
	var b strings.Builder
	b.WriteString("schemaVersion: \"2.0.0\"\nfileContentTests:\n  - &t {name: a, path: /a, expectedContents: &p [")
	b.WriteString(strings.TrimSuffix(strings.Repeat("'a.*b', ", 1000), ", "))
	b.WriteString("]}\n")
	for i := 0; i < 4000; i++ {
		b.WriteString("  - {name: a, path: /a, expectedContents: *p}\n")
	}
	src := b.String()
	if len(src) > 200<<10 {
		t.Fatalf("the bomb is %d bytes; it should be small", len(src))
	}
	start := time.Now()
	_, err := Parse("tests.yaml", []byte(src))
	el := time.Since(start)
	var list ErrorList
	if !errors.As(err, &list) || fault.KindOf(err) != fault.BadInput {
		t.Fatalf("Parse: %v, want bad input", err)
	}
	if len(list) != 1 || !strings.Contains(list[0].Msg, "the aliases (*name) in this file expand to too much") || list[0].Pos.Line < 4 {
		t.Errorf("errors: %v", err)
	}
	// Its speed is a benchmark's business (BenchmarkAliasBomb); this
	// records it.
	t.Logf("refused in %v", el)
}

func TestLoadFilesRefusesHugeAndSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 1<<30); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{big, "more than the 16777216 (16 MiB) that repro reads"},
		{"/dev/zero", "not a regular file (it is a character device)"},
		{dir, "not a regular file (it is a directory)"},
	} {
		_, err := LoadFiles([]string{c.path})
		if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadFiles(%s): %v, want bad input saying %q", c.path, err, c.want)
		}
	}
	if !errors.Is(func() error { _, err := LoadFiles([]string{big}); return err }(), yamlpos.ErrTooLarge) {
		t.Error("the error does not wrap ErrTooLarge")
	}
}

func TestSchemaVersion1(t *testing.T) {
	f, err := Parse("t.yaml", []byte(`schemaVersion: '1.0.0'
commandTests:
- name: 'bad apt-get-command'
  command: ['apt-get', 'dslkfjasl']
  exitCode: 1
fileExistenceTests:
- name: 'Fake Dir'
  path: '/foo/bar'
licenseTests:
- debian: true
  files:
`))
	if err != nil {
		t.Fatal(err)
	}
	c := f.CommandTests[0]
	if c.Command != "apt-get" || len(c.Args) != 1 || c.Args[0] != "dslkfjasl" || c.ExitCode != 1 {
		t.Errorf("command test %+v", c)
	}
	e := f.FileExistenceTests[0]
	if !e.ShouldExist || e.UID != -1 || e.GID != -1 {
		t.Errorf("existence test %+v: want shouldExist and owners unchecked", e)
	}
	if len(f.LicenseTests) != 1 || !f.LicenseTests[0].Debian || f.SchemaVersion != SchemaVersion1 {
		t.Errorf("file %+v", f)
	}
}

func TestErrorsAreCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("schemaVersion: \"2.0.0\"\nfileContentTests:\n")
	for i := 0; i < 100; i++ {
		b.WriteString("  - {name: a, path: /a, colour: red}\n")
	}
	_, err := Parse("tests.yaml", []byte(b.String()))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != maxErrors+1 || !strings.Contains(list[maxErrors].Msg, "and 80 more problems") {
		t.Errorf("%d errors: %v", len(list), err)
	}
}

// BenchmarkAliasBomb measures refusing the alias bomb of
// TestAliasBombRefused: 4 million patterns asked for by a 190 KB file.
func BenchmarkAliasBomb(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("schemaVersion: \"2.0.0\"\nfileContentTests:\n  - {name: a, path: /a, expectedContents: &p [")
	sb.WriteString(strings.TrimSuffix(strings.Repeat("'a.*b', ", 1000), ", ") + "]}\n")
	for i := 0; i < 4000; i++ {
		sb.WriteString("  - {name: a, path: /a, expectedContents: *p}\n")
	}
	data := []byte(sb.String())
	for b.Loop() {
		if _, err := Parse("tests.yaml", data); err == nil {
			b.Fatal("accepted")
		}
	}
}
