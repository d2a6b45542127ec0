package attest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/reprobuild/repro/internal/canonical"
)

// Format is an SBOM format.
type Format string

const (
	SPDXJSON      Format = "spdx-json"      // SPDX 2.3, JSON
	CycloneDXJSON Format = "cyclonedx-json" // CycloneDX 1.5, JSON
)

// ParseFormat returns the format named s.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case SPDXJSON, CycloneDXJSON:
		return Format(s), nil
	}
	return "", fmt.Errorf("unknown SBOM format %q; use spdx-json or cyclonedx-json", s)
}

// PredicateType is the in-toto predicate type of an SBOM in format f.
func (f Format) PredicateType() string {
	if f == CycloneDXJSON {
		return CycloneDXType
	}
	return SPDXType
}

// SBOM encodes inv in format f. tool is repro's version, recorded as the
// document's creator; the document's time is inv.Created.
func SBOM(inv *Inventory, f Format, tool string) ([]byte, error) {
	g := newGraph(inv)
	switch f {
	case CycloneDXJSON:
		return canonical.JSON(g.cyclonedx(inv, tool))
	case SPDXJSON, "":
		return canonical.JSON(g.spdx(inv, tool))
	}
	return nil, fmt.Errorf("unknown SBOM format %q", f)
}

// graph is an SBOM's elements and relationships, independent of format.
type graph struct {
	root     string
	elements map[string]*element
	rels     map[rel]bool
}

type elementKind int

const (
	kIndex elementKind = iota
	kImage
	kBase
	kFile
	kGoBinary
	kGoModule
	kOSPackage
	kOS
)

type element struct {
	id      string // without a format's prefix
	kind    elementKind
	name    string
	version string
	purl    string
	sha256  string
	sha1    string
	comment string
	props   map[string]string
}

type rel struct{ from, typ, to string }

func shortID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:8])
}

func newGraph(inv *Inventory) *graph {
	g := &graph{elements: map[string]*element{}, rels: map[rel]bool{}}
	add := func(e *element) string {
		if _, ok := g.elements[e.id]; !ok {
			g.elements[e.id] = e
		}
		return e.id
	}
	name := inv.Name
	if name == "" {
		name = "image"
	}
	index := inv.MediaType != "" && (strings.Contains(inv.MediaType, "index") || strings.Contains(inv.MediaType, "manifest.list"))
	if index {
		g.root = add(&element{id: "Index", kind: kIndex, name: name, version: inv.Digest, purl: ociPURL(name, inv.Digest, nil)})
	}
	for _, img := range inv.Images {
		id := "Image"
		if index {
			id = "Image-" + sanitizeID(img.Platform)
		}
		arch := strings.Split(img.Platform, "/")
		q := [][2]string{}
		if len(arch) > 1 {
			q = append(q, [2]string{"arch", arch[1]})
		}
		add(&element{id: id, kind: kImage, name: name, version: img.Digest, purl: ociPURL(name, img.Digest, q),
			props: map[string]string{"repro:platform": img.Platform}})
		if index {
			g.rels[rel{g.root, "CONTAINS", id}] = true
		} else {
			g.root = id
		}
		if b := img.Base; b != nil {
			bn, q := baseName(b.Name)
			bid := add(&element{id: "Base-" + shortID(b.Digest), kind: kBase, name: bn, version: b.Digest, purl: ociPURL(bn, b.Digest, q)})
			g.rels[rel{id, "DESCENDANT_OF", bid}] = true
		}
		for _, l := range img.Layers {
			for _, f := range l.Files {
				fid := add(&element{id: "File-" + shortID(l.Digest, f.Path), kind: kFile, name: f.Path, sha256: f.SHA256, sha1: f.SHA1,
					comment: fmt.Sprintf("layer %d (%s)", l.Index, l.Digest),
					props:   map[string]string{"repro:layer": fmt.Sprint(l.Index), "repro:layerDigest": l.Digest}})
				g.rels[rel{id, "CONTAINS", fid}] = true
			}
		}
		for _, b := range img.GoBinaries {
			bid := add(&element{id: "GoBinary-" + shortID(b.SHA256, b.Path), kind: kGoBinary, name: b.Main.Path, version: goVersion(b.Main.Version),
				purl: golangPURL(b.Main.Path, b.Main.Version), sha256: b.SHA256, comment: "Go binary " + b.Path + " (package " + b.Package + ")",
				props: map[string]string{"repro:path": b.Path, "repro:goPackage": b.Package}})
			g.rels[rel{id, "CONTAINS", bid}] = true
			std := strings.TrimPrefix(b.GoVersion, "go")
			sid := add(&element{id: "GoModule-" + shortID("stdlib", std), kind: kGoModule, name: "stdlib", version: std, purl: golangPURL("stdlib", std)})
			g.rels[rel{bid, "DEPENDS_ON", sid}] = true
			for _, m := range b.Deps {
				// SPDX packages have no properties: the go.sum hash goes in
				// the comment too (it is no checksum of a file SPDX knows).
				comment := ""
				if m.Sum != "" {
					comment = "go.sum " + m.Sum
				}
				mid := add(&element{id: "GoModule-" + shortID(m.Path, m.Version), kind: kGoModule, name: m.Path, version: m.Version, purl: golangPURL(m.Path, m.Version),
					comment: comment, props: map[string]string{"repro:goSum": m.Sum}})
				g.rels[rel{bid, "DEPENDS_ON", mid}] = true
			}
		}
		if img.DistroID != "" {
			// One operating-system component per distribution release
			// (Trivy wants exactly one; Grype matches by it).
			oid := add(&element{id: "OperatingSystem-" + sanitizeID(img.DistroID+"-"+img.DistroVersion), kind: kOS, name: img.DistroID, version: img.DistroVersion,
				comment: img.DistroName})
			g.rels[rel{id, "CONTAINS", oid}] = true
		}
		for _, p := range img.Packages {
			props := map[string]string{"repro:source": p.Source, "repro:license": p.License}
			if acts := img.MaintScripts[p.Name]; len(acts) > 0 {
				props["repro:maintainerScripts"] = maintSummary(acts)
			}
			pid := add(&element{id: "Package-" + shortID(p.Type, p.Name, p.Version, p.Architecture), kind: kOSPackage, name: p.Name, version: p.Version, sha256: p.SHA256,
				purl: osPURL(p, img.DistroID, img.DistroVersion), props: props})
			g.rels[rel{id, "CONTAINS", pid}] = true
		}
		if len(img.Excluded) > 0 {
			var parts []string
			for _, x := range img.Excluded {
				parts = append(parts, x.Name+" (required by "+strings.Join(x.RequiredBy, ", ")+")")
			}
			g.elements[id].props["repro:aptExcluded"] = strings.Join(parts, "; ")
		}
	}
	return g
}

// maintSummary renders a package's maintainer-script actions as one
// property value: "postinst update-alternatives awk: done (...); ...".
func maintSummary(acts []MaintAction) string {
	parts := make([]string, 0, len(acts))
	for _, a := range acts {
		parts = append(parts, fmt.Sprintf("%s %s: %s (%s)", a.Script, a.What, a.Status, a.How))
	}
	return strings.Join(parts, "; ")
}

func (g *graph) sortedElements() []*element {
	out := make([]*element, 0, len(g.elements))
	for _, e := range g.elements {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].kind != out[j].kind {
			return out[i].kind < out[j].kind
		}
		if out[i].name != out[j].name {
			return out[i].name < out[j].name
		}
		return out[i].id < out[j].id
	})
	return out
}

func (g *graph) sortedRels() []rel {
	out := make([]rel, 0, len(g.rels))
	for r := range g.rels {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.from != b.from {
			return a.from < b.from
		}
		if a.typ != b.typ {
			return a.typ < b.typ
		}
		return a.to < b.to
	})
	return out
}

// --- SPDX 2.3 ---------------------------------------------------------------

type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Files             []spdxFile         `json:"files,omitempty"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name                    string                `json:"name"`
	SPDXID                  string                `json:"SPDXID"`
	VersionInfo             string                `json:"versionInfo,omitempty"`
	DownloadLocation        string                `json:"downloadLocation"`
	FilesAnalyzed           bool                  `json:"filesAnalyzed"`
	PackageVerificationCode *spdxVerificationCode `json:"packageVerificationCode,omitempty"`
	Checksums               []spdxChecksum        `json:"checksums,omitempty"`
	SourceInfo              string                `json:"sourceInfo,omitempty"`
	Comment                 string                `json:"comment,omitempty"`
	PrimaryPackagePurpose   string                `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs            []spdxExtRef          `json:"externalRefs,omitempty"`
}

type spdxVerificationCode struct {
	Value string `json:"packageVerificationCodeValue"`
}

type spdxFile struct {
	FileName  string         `json:"fileName"`
	SPDXID    string         `json:"SPDXID"`
	Checksums []spdxChecksum `json:"checksums"`
	Comment   string         `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxExtRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

func (g *graph) spdx(inv *Inventory, tool string) spdxDocument {
	id := func(s string) string { return "SPDXRef-" + s }
	name := inv.Name
	if name == "" {
		name = "image"
	}
	doc := spdxDocument{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              name + "@" + inv.Digest,
		DocumentNamespace: "https://github.com/reprobuild/repro/sbom/" + sanitizeID(name) + "/" + strings.ReplaceAll(inv.Digest, ":", "-"),
		CreationInfo: spdxCreationInfo{
			Created:  time.Unix(inv.Created, 0).UTC().Format(time.RFC3339),
			Creators: []string{"Tool: repro-" + tool},
		},
		Packages:      []spdxPackage{},
		Relationships: []spdxRelationship{{SPDXElementID: "SPDXRef-DOCUMENT", RelationshipType: "DESCRIBES", RelatedSPDXElement: id(g.root)}},
	}
	// A package that contains files is one whose files were analyzed; its
	// verification code is the SHA-1 of its files' sorted SHA-1s (SPDX 2.3,
	// clause 7.9).
	contained := map[string][]string{}
	for r := range g.rels {
		if to := g.elements[r.to]; r.typ == "CONTAINS" && to.kind == kFile {
			contained[r.from] = append(contained[r.from], to.sha1)
		}
	}
	for _, e := range g.sortedElements() {
		if e.kind == kFile {
			doc.Files = append(doc.Files, spdxFile{FileName: e.name, SPDXID: id(e.id), Comment: e.comment, Checksums: []spdxChecksum{
				{Algorithm: "SHA1", ChecksumValue: e.sha1}, {Algorithm: "SHA256", ChecksumValue: e.sha256}}})
			continue
		}
		p := spdxPackage{Name: e.name, SPDXID: id(e.id), VersionInfo: e.version, DownloadLocation: "NOASSERTION", Comment: e.comment}
		if sums := contained[e.id]; len(sums) > 0 {
			sort.Strings(sums)
			code := sha1.Sum([]byte(strings.Join(sums, "")))
			p.FilesAnalyzed = true
			p.PackageVerificationCode = &spdxVerificationCode{Value: hex.EncodeToString(code[:])}
		}
		switch e.kind {
		case kIndex, kImage, kBase:
			p.PrimaryPackagePurpose = "CONTAINER"
		case kGoBinary:
			p.PrimaryPackagePurpose = "APPLICATION"
			p.Checksums = []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: e.sha256}}
		case kOS:
			p.PrimaryPackagePurpose = "OPERATING-SYSTEM"
		case kGoModule, kOSPackage:
			p.PrimaryPackagePurpose = "LIBRARY"
			if e.sha256 != "" { // a pinned .deb
				p.Checksums = []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: e.sha256}}
			}
		}
		if src := e.props["repro:source"]; src != "" {
			p.SourceInfo = "built from the source package " + src
		}
		if e.purl != "" {
			p.ExternalRefs = []spdxExtRef{{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: e.purl}}
		}
		doc.Packages = append(doc.Packages, p)
	}
	for _, r := range g.sortedRels() {
		doc.Relationships = append(doc.Relationships, spdxRelationship{SPDXElementID: id(r.from), RelationshipType: r.typ, RelatedSPDXElement: id(r.to)})
	}
	return doc
}

// --- CycloneDX 1.5 ----------------------------------------------------------

type cdxBOM struct {
	BOMFormat    string          `json:"bomFormat"`
	SpecVersion  string          `json:"specVersion"`
	SerialNumber string          `json:"serialNumber"`
	Version      int             `json:"version"`
	Metadata     cdxMetadata     `json:"metadata"`
	Components   []cdxComponent  `json:"components"`
	Dependencies []cdxDependency `json:"dependencies"`
}

type cdxMetadata struct {
	Timestamp string       `json:"timestamp"`
	Tools     cdxTools     `json:"tools"`
	Component cdxComponent `json:"component"`
}

type cdxTools struct {
	Components []cdxComponent `json:"components"`
}

type cdxComponent struct {
	BOMRef      string        `json:"bom-ref,omitempty"`
	Type        string        `json:"type"`
	Name        string        `json:"name"`
	Version     string        `json:"version,omitempty"`
	Description string        `json:"description,omitempty"`
	Hashes      []cdxHash     `json:"hashes,omitempty"`
	PURL        string        `json:"purl,omitempty"`
	Properties  []cdxProperty `json:"properties,omitempty"`
}

type cdxHash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

type cdxProperty struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type cdxDependency struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn,omitempty"`
}

func (g *graph) cyclonedx(inv *Inventory, tool string) cdxBOM {
	comp := func(e *element) cdxComponent {
		c := cdxComponent{BOMRef: e.id, Name: e.name, Version: e.version, PURL: e.purl, Description: e.comment}
		switch e.kind {
		case kIndex, kImage, kBase:
			c.Type = "container"
		case kFile:
			c.Type = "file"
			c.Hashes = []cdxHash{{Alg: "SHA-1", Content: e.sha1}, {Alg: "SHA-256", Content: e.sha256}}
		case kGoBinary:
			c.Type = "application"
			c.Hashes = []cdxHash{{Alg: "SHA-256", Content: e.sha256}}
		case kOS:
			c.Type = "operating-system"
		default:
			c.Type = "library"
			if e.sha256 != "" { // a pinned .deb
				c.Hashes = []cdxHash{{Alg: "SHA-256", Content: e.sha256}}
			}
		}
		for _, k := range sortedKeys(e.props) {
			if e.props[k] != "" {
				c.Properties = append(c.Properties, cdxProperty{Name: k, Value: e.props[k]})
			}
		}
		return c
	}
	bom := cdxBOM{
		BOMFormat:    "CycloneDX",
		SpecVersion:  "1.5",
		SerialNumber: "urn:uuid:" + uuidOf(inv.Digest),
		Version:      1,
		Metadata: cdxMetadata{
			Timestamp: time.Unix(inv.Created, 0).UTC().Format(time.RFC3339),
			Tools:     cdxTools{Components: []cdxComponent{{Type: "application", Name: "repro", Version: tool}}},
			Component: comp(g.elements[g.root]),
		},
		Components:   []cdxComponent{},
		Dependencies: []cdxDependency{},
	}
	for _, e := range g.sortedElements() {
		if e.id == g.root {
			continue
		}
		bom.Components = append(bom.Components, comp(e))
	}
	deps := map[string][]string{}
	for _, r := range g.sortedRels() {
		deps[r.from] = append(deps[r.from], r.to)
	}
	for _, from := range sortedKeys(deps) {
		bom.Dependencies = append(bom.Dependencies, cdxDependency{Ref: from, DependsOn: deps[from]})
	}
	return bom
}

// uuidOf derives a version-5-style UUID from s, so that the serial number
// is the same for the same image.
func uuidOf(s string) string {
	sum := sha256.Sum256([]byte("repro sbom " + s))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// --- package URLs -----------------------------------------------------------

// purlEscape percent-encodes s for a purl component.
func purlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func qualifiers(q [][2]string) string {
	sort.Slice(q, func(i, j int) bool { return q[i][0] < q[j][0] })
	var parts []string
	for _, kv := range q {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+purlEscape(kv[1]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "?" + strings.Join(parts, "&")
}

func ociPURL(name, digest string, q [][2]string) string {
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	return "pkg:oci/" + purlEscape(strings.ToLower(name)) + "@" + purlEscape(digest) + qualifiers(q)
}

// baseName splits a base's repository[:tag] into the purl's name and its
// repository_url and tag qualifiers.
func baseName(ref string) (string, [][2]string) {
	if ref == "" {
		return "base", nil
	}
	repo, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	name := repo
	if i := strings.LastIndex(repo, "/"); i >= 0 {
		name = repo[i+1:]
	}
	return name, [][2]string{{"repository_url", repo}, {"tag", tag}}
}

func goVersion(v string) string {
	if v == "(devel)" {
		return ""
	}
	return v
}

func golangPURL(path, version string) string {
	segs := strings.Split(path, "/")
	for i := range segs {
		segs[i] = purlEscape(segs[i])
	}
	p := "pkg:golang/" + strings.Join(segs, "/")
	if v := goVersion(version); v != "" {
		p += "@" + purlEscape(v)
	}
	return p
}

func osPURL(p OSPackage, distroID, distroVersion string) string {
	ns := distroID
	if ns == "" {
		ns = map[string]string{"deb": "debian", "apk": "alpine"}[p.Type]
	}
	q := [][2]string{{"arch", p.Architecture}}
	if distroID != "" && distroVersion != "" {
		q = append(q, [2]string{"distro", distroID + "-" + distroVersion})
	}
	// upstream= is the source package, with its version where the control
	// file gives one, as syft writes it (libcap2@1:2.66-4+deb12u3 for the
	// binNMU libcap2 1:2.66-4+deb12u3+b1).
	if p.Type == "deb" && p.Source != "" {
		up := p.Source
		if p.SourceVersion != "" {
			up += "@" + p.SourceVersion
		}
		q = append(q, [2]string{"upstream", up})
	}
	return "pkg:" + p.Type + "/" + purlEscape(ns) + "/" + purlEscape(p.Name) + "@" + purlEscape(p.Version) + qualifiers(q)
}

// sanitizeID makes s fit an SPDX identifier: letters, digits, . and -.
func sanitizeID(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}
