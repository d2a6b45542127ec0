package diff

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/reprobuild/repro/pkg/rootfs"
)

// WriteText writes the report for people: the verdict first, then each
// difference, top down.
func (r *Report) WriteText(w io.Writer) {
	if r.Identical {
		fmt.Fprintf(w, "identical: %s\n  a: %s\n  b: %s\n", r.A.Digest, r.A.Ref, r.B.Ref)
		return
	}
	fmt.Fprintf(w, "different:\n  a: %s  %s\n  b: %s  %s\n", r.A.Ref, r.A.Digest, r.B.Ref, r.B.Digest)
	if only := r.compressionOnly(); only {
		fmt.Fprintln(w, "  the layers' contents are identical: only their compression differs")
	}
	writeFields(w, "index", r.Index, "  ")
	for _, p := range r.Platforms {
		if p.empty() {
			fmt.Fprintf(w, "%s: identical (%s)\n", p.Platform, p.A)
			continue
		}
		fmt.Fprintf(w, "%s:\n", p.Platform)
		switch {
		case p.A == "":
			fmt.Fprintf(w, "  only in b: %s\n", p.B)
			continue
		case p.B == "":
			fmt.Fprintf(w, "  only in a: %s\n", p.A)
			continue
		}
		fmt.Fprintf(w, "  manifest %s -> %s\n", p.A, p.B)
		writeFields(w, "manifest", p.Manifest, "  ")
		writeFields(w, "config", p.Config, "  ")
		if len(p.Layers) > 0 {
			fmt.Fprintln(w, "  layers:")
			for _, l := range p.Layers {
				switch l.Change {
				case LayerAdded:
					fmt.Fprintf(w, "    [%d] added: %s (diff ID %s)\n", l.Index, l.B.Digest, l.B.DiffID)
				case LayerRemoved:
					fmt.Fprintf(w, "    [%d] removed: %s (diff ID %s)\n", l.Index, l.A.Digest, l.A.DiffID)
				case LayerCompressionOnly:
					fmt.Fprintf(w, "    [%d] compression only: same content (diff ID %s); blob %s (%s, %d bytes) -> %s (%s, %d bytes)\n",
						l.Index, l.A.DiffID, l.A.Digest, l.A.MediaType, l.A.Size, l.B.Digest, l.B.MediaType, l.B.Size)
				default:
					fmt.Fprintf(w, "    [%d] %s: diff ID %s -> %s\n", l.Index, l.Change, l.A.DiffID, l.B.DiffID)
				}
			}
		}
		if len(p.Files) > 0 {
			fmt.Fprintln(w, "  files (final filesystem):")
			writeFiles(w, p.Files, "    ")
		} else if len(p.Layers) > 0 {
			fmt.Fprintln(w, "  files (final filesystem): identical")
		}
		for _, lf := range p.LayerFiles {
			fmt.Fprintf(w, "  files of layer [%d]:\n", lf.Index)
			writeFiles(w, lf.Files, "    ")
		}
	}
}

func (r *Report) compressionOnly() bool {
	found := false
	for _, p := range r.Platforms {
		if len(p.Files) > 0 || len(p.LayerFiles) > 0 {
			return false
		}
		for _, l := range p.Layers {
			if l.Change != LayerCompressionOnly {
				return false
			}
			found = true
		}
	}
	return found
}

func writeFields(w io.Writer, what string, fs []Field, indent string) {
	if len(fs) == 0 {
		return
	}
	fmt.Fprintf(w, "%s%s:\n", indent, what)
	for _, f := range fs {
		fmt.Fprintf(w, "%s  %s: %s -> %s\n", indent, f.Field, show(f.A), show(f.B))
	}
}

func show(v any) string {
	if v == nil {
		return "(absent)"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func writeFiles(w io.Writer, fs []FileDiff, indent string) {
	for _, f := range fs {
		switch f.Change {
		case "added":
			fmt.Fprintf(w, "%s+ %s  %s\n", indent, f.Path, brief(f.B))
		case "removed":
			fmt.Fprintf(w, "%s- %s  %s\n", indent, f.Path, brief(f.A))
		default:
			var parts []string
			for _, field := range f.Fields {
				parts = append(parts, field+" "+fieldChange(field, f.A, f.B))
			}
			fmt.Fprintf(w, "%s~ %s  %s\n", indent, f.Path, strings.Join(parts, "; "))
		}
	}
}

func brief(f *rootfs.File) string {
	s := fmt.Sprintf("%s %04o %d:%d", f.Kind, f.Mode, f.UID, f.GID)
	switch f.Kind {
	case rootfs.Regular:
		s += fmt.Sprintf(" %d bytes sha256:%s", f.Size, short(f.SHA256))
	case rootfs.Symlink, rootfs.Hardlink:
		s += " -> " + f.Link
	}
	return s
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func fieldChange(field string, a, b *rootfs.File) string {
	switch field {
	case "type":
		return fmt.Sprintf("%s -> %s", a.Kind, b.Kind)
	case "content":
		return fmt.Sprintf("sha256:%s (%d bytes) -> sha256:%s (%d bytes)", short(a.SHA256), a.Size, short(b.SHA256), b.Size)
	case "mode":
		return fmt.Sprintf("%04o -> %04o", a.Mode, b.Mode)
	case "owner":
		return fmt.Sprintf("%d:%d -> %d:%d", a.UID, a.GID, b.UID, b.GID)
	case "mtime":
		return fmt.Sprintf("%s -> %s", a.ModTime.Format("2006-01-02T15:04:05Z"), b.ModTime.Format("2006-01-02T15:04:05Z"))
	case "xattrs":
		return fmt.Sprintf("%s -> %s", show(a.Xattrs), show(b.Xattrs))
	case "link":
		return fmt.Sprintf("%q -> %q", a.Link, b.Link)
	case "device":
		return fmt.Sprintf("%d,%d -> %d,%d", a.Devmajor, a.Devminor, b.Devmajor, b.Devminor)
	}
	return ""
}
