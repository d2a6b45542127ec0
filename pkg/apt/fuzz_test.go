package apt

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// FuzzArReader feeds arbitrary bytes to the ar reader and the .deb
// reader: they must fail cleanly, never panic or loop.
func FuzzArReader(f *testing.F) {
	f.Add(makeDeb(f, debSpec{control: "Package: a\nVersion: 1\nArchitecture: all\n", comp: ".gz", files: []tfile{{name: "./x", body: "x"}}}))
	f.Add([]byte(arMagic + "debian-binary   0           0     0     100644  4         `\n2.0\n"))
	f.Add([]byte(arMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		ar, err := newArReader(bytes.NewReader(data))
		if err == nil {
			for i := 0; i < 100; i++ {
				h, err := ar.Next()
				if err != nil {
					break
				}
				n, _ := io.Copy(io.Discard, ar)
				if n > h.Size {
					t.Fatalf("member %q: read %d bytes, size %d", h.Name, n, h.Size)
				}
			}
		}
		if _, data, err := readDeb(bytes.NewReader(data)); err == nil {
			io.Copy(io.Discard, io.LimitReader(data, 1<<20))
		}
	})
}

// FuzzParseStanzas checks that the stanza scanner never panics and that
// every package it returns has a name and a parsed version.
func FuzzParseStanzas(f *testing.F) {
	f.Add(universeMain)
	f.Add("Package: a\nVersion: 1:2.0-1\nProvides: b (= 1), c\nDepends: d | e (>= 1)\n .\n\n#c\n\n")
	f.Add("Package: a\n continuation\nVersion: 1\n")
	f.Fuzz(func(t *testing.T, s string) {
		pkgs, err := ParseStanzas(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" {
				t.Fatalf("package without name or version: %+v", p)
			}
			p.relations()
		}
		NewIndex("amd64", pkgs, nil).Resolve([]string{"a"}, nil, nil)
	})
}
