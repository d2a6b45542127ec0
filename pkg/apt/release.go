package apt

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"pault.ag/go/debian/control"
)

// ReadKeyring reads OpenPGP public keys: one or more ASCII-armored blocks
// (a .asc file, or several concatenated), or a binary keyring (a .gpg
// file such as Debian's /usr/share/keyrings/debian-archive-keyring.gpg).
func ReadKeyring(data []byte) (openpgp.EntityList, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("the keyring is empty; give the repository's signing keys (ASCII-armored)")
	}
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		el, err := openpgp.ReadKeyRing(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("reading the binary keyring: %w", err)
		}
		return el, nil
	}
	var all openpgp.EntityList
	r := bytes.NewReader(trimmed)
	for {
		block, err := armor.Decode(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the armored keyring: %w", err)
		}
		if block.Type != openpgp.PublicKeyType {
			return nil, fmt.Errorf("the keyring holds a %q block; only public keys belong there", block.Type)
		}
		el, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return nil, fmt.Errorf("reading the armored keyring: %w", err)
		}
		all = append(all, el...)
	}
	if len(all) == 0 {
		return nil, errors.New("the keyring holds no public key")
	}
	return all, nil
}

// Release is the verified content of a suite's InRelease file.
type Release struct {
	Suite, Codename string
	Architectures   []string
	Components      []string
	AcquireByHash   bool
	// NotAutomatic and ButAutomaticUpgrades lower the suite's pin
	// priority, as apt's policy does (see PinPriority).
	NotAutomatic, ButAutomaticUpgrades bool
	// NoAllPackages is No-Support-for-Architecture-all: Packages, meaning
	// Architecture: all packages are only in binary-all.
	NoAllPackages bool
	ValidUntil    time.Time
	// SHA256 maps an index path (main/binary-amd64/Packages.xz) to its
	// digest and size.
	SHA256 map[string]FileDigest
}

// PinPriority is the priority apt's policy gives the suite's packages
// when nothing pins them: 500; 100 for NotAutomatic with
// ButAutomaticUpgrades (backports); 1 for NotAutomatic alone.
func (r *Release) PinPriority() int {
	switch {
	case r.NotAutomatic && r.ButAutomaticUpgrades:
		return 100
	case r.NotAutomatic:
		return 1
	}
	return 500
}

// FileDigest is a file's SHA-256 (hex) and size, as a Release lists it.
type FileDigest struct {
	SHA256 string
	Size   int64
}

// VerifyInRelease checks data, a clearsigned InRelease file, against the
// keyring and returns the Release it signs. Only the signed text is read:
// data must be one clearsigned message and nothing else. now, when not
// nil, is the time at which keys and signatures must be valid; nil means
// the current time.
func VerifyInRelease(data []byte, keyring openpgp.EntityList, now func() time.Time) (*Release, error) {
	if len(keyring) == 0 {
		return nil, errors.New("no keyring: an InRelease file cannot be trusted without the repository's keys")
	}
	if !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("-----BEGIN PGP SIGNED MESSAGE-----")) {
		return nil, errors.New("not a clearsigned file (it does not start with -----BEGIN PGP SIGNED MESSAGE-----)")
	}
	block, rest := clearsign.Decode(data)
	if block == nil {
		return nil, errors.New("malformed clearsigned message")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("text after the signature; only the signed text may be there")
	}
	cfg := &packet.Config{}
	if now != nil {
		cfg.Time = now
	}
	if _, err := block.VerifySignature(keyring, cfg); err != nil {
		if errors.Is(err, pgperrors.ErrUnknownIssuer) {
			return nil, fmt.Errorf("checking the signature: %w: it was made by %s, and the keyring holds %s", err, signers(data), keyList(keyring))
		}
		return nil, fmt.Errorf("checking the signature: %w", err)
	}
	rel, err := parseRelease(block.Plaintext)
	if err != nil {
		return nil, err
	}
	if now != nil && !rel.ValidUntil.IsZero() && now().After(rel.ValidUntil) {
		return nil, fmt.Errorf("the Release file expired at %s (Valid-Until)", rel.ValidUntil.Format(time.RFC1123))
	}
	return rel, nil
}

// parseRelease reads a Release file's fields.
func parseRelease(text []byte) (*Release, error) {
	pr, err := control.NewParagraphReader(bytes.NewReader(text), nil)
	if err != nil {
		return nil, err
	}
	para, err := pr.Next()
	if err != nil {
		return nil, fmt.Errorf("reading the Release fields: %w", err)
	}
	v := para.Values
	rel := &Release{
		Suite:                strings.TrimSpace(v["Suite"]),
		Codename:             strings.TrimSpace(v["Codename"]),
		Architectures:        strings.Fields(v["Architectures"]),
		Components:           strings.Fields(v["Components"]),
		AcquireByHash:        strings.EqualFold(strings.TrimSpace(v["Acquire-By-Hash"]), "yes"),
		NotAutomatic:         strings.EqualFold(strings.TrimSpace(v["NotAutomatic"]), "yes"),
		ButAutomaticUpgrades: strings.EqualFold(strings.TrimSpace(v["ButAutomaticUpgrades"]), "yes"),
		NoAllPackages:        strings.TrimSpace(v["No-Support-for-Architecture-all"]) == "Packages",
		SHA256:               map[string]FileDigest{},
	}
	if s := strings.TrimSpace(v["Valid-Until"]); s != "" {
		t, err := parseReleaseDate(s)
		if err != nil {
			return nil, fmt.Errorf("Valid-Until %q: %w", s, err)
		}
		rel.ValidUntil = t
	}
	for _, line := range strings.Split(v["SHA256"], "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || len(f[0]) != 64 {
			return nil, fmt.Errorf("bad SHA256 line %q", line)
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad SHA256 line %q", line)
		}
		rel.SHA256[f[2]] = FileDigest{SHA256: strings.ToLower(f[0]), Size: n}
	}
	if len(rel.SHA256) == 0 {
		return nil, errors.New("the Release file lists no SHA256 digests")
	}
	return rel, nil
}

func parseReleaseDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC1123Z, time.RFC1123, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("not an RFC 2822 date")
}

// signers names the keys that made the signatures of a clearsigned message,
// by fingerprint when the signature carries it, else by key ID.
func signers(data []byte) string {
	var names []string
	block, _ := clearsign.Decode(data) // read again: verifying consumed the signature
	if block == nil {
		return "a key it does not name"
	}
	pr := packet.NewReader(block.ArmoredSignature.Body)
	for {
		p, err := pr.Next()
		if err != nil {
			break
		}
		sig, ok := p.(*packet.Signature)
		if !ok {
			continue
		}
		switch {
		case len(sig.IssuerFingerprint) > 0:
			names = append(names, "key "+strings.ToUpper(hex.EncodeToString(sig.IssuerFingerprint)))
		case sig.IssuerKeyId != nil:
			names = append(names, fmt.Sprintf("key ID %016X", *sig.IssuerKeyId))
		}
	}
	if len(names) == 0 {
		return "a key it does not name"
	}
	return strings.Join(names, " and ")
}

// keyList names a keyring's primary keys and subkeys by fingerprint.
func keyList(el openpgp.EntityList) string {
	var names []string
	for _, e := range el {
		names = append(names, strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint)))
		for _, sk := range e.Subkeys {
			names = append(names, strings.ToUpper(hex.EncodeToString(sk.PublicKey.Fingerprint))+" (subkey)")
		}
	}
	if len(names) == 0 {
		return "no key"
	}
	return strings.Join(names, ", ")
}
