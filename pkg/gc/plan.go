package gc

import (
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options shape a collection.
type Options struct {
	// Now is the time ages are measured from; cmd/repro passes the clock
	// (or --now).
	Now time.Time
	// KeepDays: images whose config created is older than this many days
	// (of 24 hours) before Now go.
	KeepDays int
	// KeepLast: the newest KeepLast images (by created) stay, however
	// old. The command's default is 1.
	KeepLast int
	// DryRun plans and reports, and changes nothing.
	DryRun bool
	// Log receives progress; nil discards.
	Log *slog.Logger
	// Remote are the options of registry requests (auth, retries).
	Remote []remote.Option
}

// Item is one image, index, signature or attestation, and what happens
// to it.
type Item struct {
	Digest    string     `json:"digest"`
	MediaType string     `json:"mediaType,omitempty"`
	Kind      string     `json:"kind"`           // image, index, signature, attestation, sbom, manifest, unknown
	Tags      []string   `json:"tags,omitempty"` // tags (ref.name in a layout) naming it
	Created   *time.Time `json:"created,omitempty"`
	AgeDays   *int       `json:"ageDays,omitempty"`
	Subject   string     `json:"subject,omitempty"` // what a signature or attestation is of
	Reason    string     `json:"reason"`
}

// Blob is a layout blob that nothing references any more.
type Blob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Report is what a collection removed, or, with DryRun, would remove, and
// what it kept and why.
type Report struct {
	Ref      string    `json:"ref"`
	DryRun   bool      `json:"dryRun"`
	Now      time.Time `json:"now"`
	KeepDays int       `json:"keepDays"`
	KeepLast int       `json:"keepLast"`
	Cutoff   time.Time `json:"cutoff"` // created before this goes
	Deleted  []Item    `json:"deleted"`
	Kept     []Item    `json:"kept"`
	// Blobs are a layout's blobs that nothing references after the
	// deletions (and any that nothing referenced before).
	Blobs     []Blob `json:"blobs,omitempty"`
	BlobBytes int64  `json:"blobBytes"`
	// Debris are the temporary files and directories of killed writers
	// removed from a layout (paths relative to the layout's parent).
	Debris []string `json:"debris,omitempty"`
}

// Kinds of what a collection sees.
const (
	kindImage       = "image"
	kindIndex       = "index"
	kindSignature   = "signature"
	kindAttestation = "attestation"
	kindSBOM        = "sbom"
	kindManifest    = "manifest" // a manifest of a deleted index (registries)
	kindUnknown     = "unknown"
)

// cosign's layout kinds (the kind annotation of index.json entries).
const (
	cosignKind       = "kind"
	cosignImage      = "dev.cosignproject.cosign/image"
	cosignImageIndex = "dev.cosignproject.cosign/imageIndex"
	cosignSigs       = "dev.cosignproject.cosign/sigs"
	cosignAtts       = "dev.cosignproject.cosign/atts"
	cosignSBOM       = "dev.cosignproject.cosign/sboms"
)

// sigTag is cosign's tag for what belongs to an image: sha256-<hex>.sig,
// .att or .sbom.
var sigTag = regexp.MustCompile(`^sha256-([0-9a-f]{64})\.(sig|att|sbom)$`)

// unit is what is kept or deleted as a whole: one digest, with every tag
// (layout entry) naming it.
type unit struct {
	digest    v1.Hash
	mediaType string
	tags      []string
	entries   []int  // positions in index.json (layouts)
	cosign    string // cosign's kind annotation, if any
	kind      string
	// created is the image's config created, or for an index the newest
	// of its images'; nil when it has none (never deleted).
	created  *time.Time
	undated  string    // why created is nil
	children []v1.Hash // an index's manifests
	// subject is what a signature, attestation or SBOM belongs to; zero
	// when not known.
	subject v1.Hash

	keep   bool
	reason string
}

func (u *unit) signature() bool {
	return u.kind == kindSignature || u.kind == kindAttestation || u.kind == kindSBOM
}

func (u *unit) item(now time.Time) Item {
	it := Item{Digest: u.digest.String(), MediaType: u.mediaType, Kind: u.kind, Tags: u.tags, Created: u.created, Reason: u.reason}
	if u.created != nil {
		days := int(now.Sub(*u.created) / (24 * time.Hour))
		it.AgeDays = &days
	}
	if u.subject != (v1.Hash{}) {
		it.Subject = u.subject.String()
	}
	return it
}

// classifyTags marks a unit named by cosign's tags as a signature,
// attestation or SBOM of the digest the tag names.
func (u *unit) classifyTags() {
	for _, t := range u.tags {
		if m := sigTag.FindStringSubmatch(t); m != nil {
			u.subject = v1.Hash{Algorithm: "sha256", Hex: m[1]}
			u.kind = map[string]string{"sig": kindSignature, "att": kindAttestation, "sbom": kindSBOM}[m[2]]
			return
		}
	}
	switch u.cosign {
	case cosignSigs:
		u.kind = kindSignature
	case cosignAtts:
		u.kind = kindAttestation
	case cosignSBOM:
		u.kind = kindSBOM
	}
}

func days(d int) string {
	if d == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", d)
}

// plan decides every unit: the dated images and indexes older than the
// cutoff go, except the newest KeepLast and any that a kept index uses;
// what has no created date stays; signatures, attestations and SBOMs go
// exactly when what they belong to goes.
func plan(units []*unit, o Options) {
	cutoff := o.cutoff()
	var dated []*unit
	for _, u := range units {
		switch {
		case u.signature():
		case u.created == nil:
			u.keep = true
			u.reason = "no created date: never deleted"
			if u.undated != "" {
				u.reason += " (" + u.undated + ")"
			}
		default:
			dated = append(dated, u)
		}
	}
	sort.SliceStable(dated, func(i, j int) bool {
		a, b := dated[i], dated[j]
		if !a.created.Equal(*b.created) {
			return a.created.After(*b.created)
		}
		return a.digest.String() < b.digest.String()
	})
	for i, u := range dated {
		switch {
		case !u.created.Before(cutoff):
			u.keep = true
			u.reason = fmt.Sprintf("created within %s", days(o.KeepDays))
		case i < o.KeepLast:
			u.keep = true
			u.reason = fmt.Sprintf("one of the newest %d", o.KeepLast)
		default:
			u.reason = fmt.Sprintf("created more than %s ago", days(o.KeepDays))
		}
	}
	// A kept index keeps every manifest it uses, and so, in turn, what a
	// kept nested index uses.
	byDigest := map[v1.Hash]*unit{}
	for _, u := range units {
		byDigest[u.digest] = u
	}
	for changed := true; changed; {
		changed = false
		for _, u := range units {
			if !u.keep || u.signature() {
				continue
			}
			for _, c := range u.children {
				if cu := byDigest[c]; cu != nil && !cu.keep && !cu.signature() {
					cu.keep = true
					cu.reason = "used by the kept index " + u.digest.String()
					changed = true
				}
			}
		}
	}
	gone := deletedManifests(units)
	for _, u := range units {
		if !u.signature() {
			continue
		}
		sub := u.subject
		switch {
		case sub == (v1.Hash{}):
			u.keep = true
			u.reason = "belongs to no image that gc can name: kept"
		case gone[sub]:
			u.reason = "belongs to " + sub.String() + ", which goes"
		case byDigest[sub] == nil && !used(units, sub):
			u.keep = true
			u.reason = "belongs to " + sub.String() + ", which is not here: kept"
		default:
			u.keep = true
			u.reason = "belongs to " + sub.String() + ", which stays"
		}
	}
}

// used reports whether a kept unit is h or uses it.
func used(units []*unit, h v1.Hash) bool {
	for _, u := range units {
		if !u.keep && !u.signature() {
			continue
		}
		if u.digest == h || contains(u.children, h) {
			return true
		}
	}
	return false
}

// deletedManifests are the digests that go: deleted units and the
// manifests of deleted indexes that no kept unit uses.
func deletedManifests(units []*unit) map[v1.Hash]bool {
	gone := map[v1.Hash]bool{}
	for _, u := range units {
		if u.keep || u.signature() {
			continue
		}
		gone[u.digest] = true
		for _, c := range u.children {
			gone[c] = true
		}
	}
	for _, u := range units {
		if !u.keep || u.signature() {
			continue
		}
		delete(gone, u.digest)
		for _, c := range u.children {
			delete(gone, c)
		}
	}
	return gone
}

func contains(list []v1.Hash, h v1.Hash) bool {
	for _, x := range list {
		if x == h {
			return true
		}
	}
	return false
}

// report lists the decisions: deleted first images and indexes, then
// signatures; each list in the order the units came.
func report(ref string, units []*unit, o Options) *Report {
	r := &Report{Ref: ref, DryRun: o.DryRun, Now: o.Now.UTC(), KeepDays: o.KeepDays, KeepLast: o.KeepLast,
		Cutoff: o.cutoff(), Deleted: []Item{}, Kept: []Item{}}
	for _, sig := range []bool{false, true} {
		for _, u := range units {
			if u.signature() != sig {
				continue
			}
			if u.keep {
				r.Kept = append(r.Kept, u.item(o.Now))
			} else {
				r.Deleted = append(r.Deleted, u.item(o.Now))
			}
		}
	}
	return r
}

func short(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return d[:len(d)-len(hex)] + hex[:12]
	}
	return d
}

// cutoff is KeepDays before Now: images created before it go. It counts
// calendar days in UTC (each 24 hours) with AddDate: time.Duration holds
// only 292 years, and a larger --keep-days (meant as "keep everything")
// would wrap around into a cutoff in the future.
func (o Options) cutoff() time.Time {
	return o.Now.UTC().AddDate(0, 0, -o.KeepDays)
}
