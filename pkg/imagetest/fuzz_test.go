package imagetest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/reprobuild/repro/pkg/fault"
)

// FuzzParse checks that Parse never panics, that every error it returns
// is bad input naming the file and a place in it, and that a file it
// accepts parses again to the same tests.
func FuzzParse(f *testing.F) {
	for _, pat := range []string{
		filepath.Join("..", "..", "testdata", "imagetest", "*.yaml"),
		filepath.Join("..", "..", "testdata", "imagetest", "bad", "*.yaml"),
		filepath.Join("..", "..", "testdata", "imagetest", "cst", "*.yaml"),
	} {
		files, err := filepath.Glob(pat)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("schemaVersion: '2.0.0'\nfileExistenceTests: [&t {name: a, path: /a}, *t, {<<: *t, uid: 0}]\n"))
	f.Add([]byte("schemaVersion: '1.0.0'\ncommandTests: [{name: a, command: [ls, -l], setup: [[]]}]\n"))
	f.Add([]byte("schemaVersion: '2.0.0'\nx: &a [*a]\nmetadataTest: {envVars: &e [{key: A}], labels: *e}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("tests.yaml", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 || fault.KindOf(err) != fault.BadInput {
				t.Fatalf("error %v (%T) is not a non-empty bad-input ErrorList", err, err)
			}
			for _, e := range list {
				if e.File != "tests.yaml" || e.Pos.Line < 1 || e.Pos.Col < 1 || e.Msg == "" {
					t.Fatalf("error %q lacks a file, a position or a message", e)
				}
			}
			return
		}
		if file.SchemaVersion != SchemaVersion && file.SchemaVersion != SchemaVersion1 {
			t.Fatalf("accepted schemaVersion %q", file.SchemaVersion)
		}
		again, err := Parse("tests.yaml", data)
		if err != nil || len(again.CommandTests) != len(file.CommandTests) || len(again.FileExistenceTests) != len(file.FileExistenceTests) {
			t.Fatalf("second Parse differs: %v", err)
		}
	})
}
