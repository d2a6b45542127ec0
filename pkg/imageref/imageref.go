package imageref

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Transport is where an image lives.
type Transport string

const (
	OCI           Transport = "oci"
	OCIArchive    Transport = "oci-archive"
	DockerArchive Transport = "docker-archive"
	Registry      Transport = "registry"
)

// Reference is a parsed image reference.
type Reference struct {
	Transport Transport
	// Path is the directory or file of the local transports.
	Path string
	// Tag is the ref.name of oci and oci-archive, or the docker reference
	// (name:tag) of docker-archive. Empty when not given.
	Tag string
	// Digest pins an oci reference (oci:DIR@sha256:…).
	Digest string
	// Name is a registry reference.
	Name name.Reference
}

func (r Reference) String() string {
	switch r.Transport {
	case Registry:
		return r.Name.String()
	}
	s := string(r.Transport) + ":" + r.Path
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Parse parses s. A string without a known transport prefix is a registry
// reference. As in skopeo, a path may not contain a colon: the first colon
// after the transport starts the tag.
func Parse(s string) (Reference, error) {
	for _, t := range []Transport{OCIArchive, OCI, DockerArchive} {
		prefix := string(t) + ":"
		if !strings.HasPrefix(s, prefix) {
			continue
		}
		rest := s[len(prefix):]
		r := Reference{Transport: t}
		if t == OCI {
			if i := strings.Index(rest, "@sha256:"); i >= 0 {
				r.Digest = rest[i+1:]
				rest = rest[:i]
				if len(r.Digest) != len("sha256:")+64 {
					return Reference{}, fmt.Errorf("%q: %s is not a sha256 digest", s, r.Digest)
				}
			}
		}
		r.Path, r.Tag, _ = strings.Cut(rest, ":")
		if r.Path == "" {
			return Reference{}, fmt.Errorf("%q: missing path; write %s:PATH[:TAG]", s, t)
		}
		if r.Tag != "" && t != DockerArchive && !validTag(r.Tag) {
			return Reference{}, fmt.Errorf("%q: %q is not a valid tag; use letters, digits, _ . - (at most 128, not starting with . or -)", s, r.Tag)
		}
		if t == DockerArchive && r.Tag != "" {
			if _, err := name.NewTag(r.Tag, name.WeakValidation); err != nil {
				return Reference{}, fmt.Errorf("%q: %q is not a docker reference (name:tag): %v", s, r.Tag, err)
			}
		}
		return r, nil
	}
	// skopeo's docker:// prefix names a registry reference.
	s = strings.TrimPrefix(s, "docker://")
	if i := strings.Index(s, ":"); i > 0 && !strings.ContainsAny(s[:i], "./") && (s[:i] == "dir" || s[:i] == "docker" || s[:i] == "docker-daemon" || s[:i] == "containers-storage") {
		return Reference{}, fmt.Errorf("%q: the %s transport is not supported; use oci:, oci-archive:, docker-archive: or a registry reference", s, s[:i])
	}
	n, err := name.ParseReference(s, name.StrictValidation)
	if err != nil {
		if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") {
			return Reference{}, fmt.Errorf("%q is a path, not an image reference; did you mean oci:%s (a layout) or oci-archive:%s (a tar)?", s, s, s)
		}
		if w, werr := name.ParseReference(s, name.WeakValidation); werr == nil {
			// repro never assumes Docker Hub: a reference names its registry.
			return Reference{}, fmt.Errorf("%q names no registry host; repro assumes none: write the full reference, like %s", s, strings.Replace(w.Name(), name.DefaultRegistry, "docker.io", 1))
		}
		return Reference{}, fmt.Errorf("%q is not an image reference: %v; write oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG], or host/repo:tag", s, err)
	}
	return Reference{Transport: Registry, Name: n}, nil
}

func validTag(t string) bool {
	if len(t) == 0 || len(t) > 128 || t[0] == '.' || t[0] == '-' {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

type nameTag = name.Tag

func parseTag(s string) (name.Tag, error) { return name.NewTag(s, name.WeakValidation) }

// WithInsecure returns r, marked to be spoken to over plain HTTP when its
// registry is one of hosts. Loopback registries (localhost, 127.0.0.1)
// need no marking.
func (r Reference) WithInsecure(hosts []string) Reference {
	if r.Transport != Registry {
		return r
	}
	for _, h := range hosts {
		if r.Name.Context().RegistryStr() == h {
			if n, err := name.ParseReference(r.Name.String(), name.StrictValidation, name.Insecure); err == nil {
				r.Name = n
			}
		}
	}
	return r
}

// ShortName names the image r refers to, as an SBOM does when told no
// name: the repository's last element, or the layout's (the archive's)
// file name without its extension.
func (r Reference) ShortName() string {
	if r.Transport == Registry {
		repo := r.Name.Context().RepositoryStr()
		return repo[strings.LastIndex(repo, "/")+1:]
	}
	base := filepath.Base(filepath.Clean(r.Path))
	return strings.TrimSuffix(base, filepath.Ext(base))
}
