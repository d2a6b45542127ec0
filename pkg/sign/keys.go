package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	rekorgen "github.com/sigstore/rekor/pkg/generated/client"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/reprobuild/repro/pkg/fault"
)

// Signer signs with one private key: a key file's, or, keyless, an
// ephemeral key that Fulcio certified (see NewKeylessSigner).
type Signer struct {
	sv  signature.SignerVerifier
	pub []byte
	alg string
	// Keyless only: the certificate and its chain (PEM), and the Rekor
	// client every signature is recorded with.
	cert, chain []byte
	rekor       *rekorgen.Rekor
}

// Keyless reports whether the signer is keyless: certified by Fulcio,
// recorded in Rekor.
func (s *Signer) Keyless() bool { return s.rekor != nil }

// KeyType is the algorithm of a key pair that GenerateKeyPair makes.
type KeyType string

const (
	Ed25519 KeyType = "ed25519" // deterministic signatures
	ECDSA   KeyType = "ecdsa"   // P-256 with SHA-256, cosign's default; randomized signatures
)

// ParseKeyType returns the key type named s.
func ParseKeyType(s string) (KeyType, error) {
	switch KeyType(s) {
	case Ed25519, ECDSA:
		return KeyType(s), nil
	}
	return "", fmt.Errorf("unknown key type %q; use ed25519 or ecdsa", s)
}

// ErrNoKeyFile: LoadSignerFile was given no file.
var ErrNoKeyFile = errors.New("no private key file given")

// LoadSignerFile reads the private key file at path and loads it
// (LoadSigner), decrypted with password when it is a cosign key file.
// No path (ErrNoKeyFile), no such file (fs.ErrNotExist), a directory and
// a key that does not load are bad input; any other read error is
// operational.
func LoadSignerFile(path string, password []byte) (*Signer, error) {
	if path == "" {
		return nil, fault.Bad(ErrNoKeyFile)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fault.Bad(fmt.Errorf("%s is a directory; give the private key file (cosign.key)", path))
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fault.Bad(fmt.Errorf("%s: %w", path, fs.ErrNotExist))
	}
	if err != nil {
		return nil, fault.Op(err)
	}
	s, err := LoadSigner(b, password)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// LoadSigner reads a private key: a cosign key file (ENCRYPTED SIGSTORE
// or ENCRYPTED COSIGN PRIVATE KEY, as `cosign generate-key-pair` writes
// it), decrypted with password; or a plain PEM key (PKCS #8, SEC 1 EC or
// PKCS #1 RSA), for which password is ignored. Ed25519 keys sign with
// pure Ed25519, which is what `cosign verify --key` checks.
func LoadSigner(keyPEM, password []byte) (*Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, fault.Bad(errors.New("the key is not PEM; give a cosign key file (cosign generate-key-pair, repro keygen) or a PEM private key"))
	}
	var sv signature.SignerVerifier
	switch block.Type {
	case cosign.CosignPrivateKeyPemType, cosign.SigstorePrivateKeyPemType:
		var err error
		sv, err = cosign.LoadPrivateKey(keyPEM, password, &[]signature.LoadOption{})
		if err != nil {
			if len(password) == 0 {
				return nil, fault.Bad(fmt.Errorf("the cosign key is encrypted and COSIGN_PASSWORD is empty; set it to the key's password (%v)", err))
			}
			return nil, fault.Bad(fmt.Errorf("COSIGN_PASSWORD does not decrypt this cosign key; set it to the password the key was made with (%v)", err))
		}
	case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
		var pk crypto.PrivateKey
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			pk, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			pk, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			pk, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		}
		if err != nil {
			return nil, fault.Bad(fmt.Errorf("reading the %s: %w", block.Type, err))
		}
		switch pk.(type) {
		case *ecdsa.PrivateKey, ed25519.PrivateKey, *rsa.PrivateKey:
		default:
			return nil, fault.Bad(fmt.Errorf("a %T key cannot sign; use ECDSA, Ed25519 or RSA", pk))
		}
		sv, err = signature.LoadDefaultSignerVerifier(pk)
		if err != nil {
			return nil, fault.Bad(fmt.Errorf("loading the key: %w", err))
		}
	default:
		return nil, fault.Bad(fmt.Errorf("a %q PEM block is not a private key repro reads; give a cosign key file or a PKCS #8, EC or RSA private key", block.Type))
	}
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, fault.Bad(err)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return nil, fault.Bad(err)
	}
	s := &Signer{sv: sv, pub: pubPEM}
	switch pub.(type) {
	case ed25519.PublicKey:
		s.alg = "ed25519"
	case *ecdsa.PublicKey:
		s.alg = "ecdsa"
	case *rsa.PublicKey:
		s.alg = "rsa"
	}
	return s, nil
}

// PublicKey is the signer's public key, PEM (PKIX).
func (s *Signer) PublicKey() []byte { return append([]byte{}, s.pub...) }

// Deterministic reports whether signing the same payload twice gives the
// same signature (Ed25519 does; ECDSA does not, nor does keyless signing,
// whose key is new every time).
func (s *Signer) Deterministic() bool { return s.alg == "ed25519" && !s.Keyless() }

// GenerateKeyPair makes a key pair in cosign's format: the private key
// encrypted with password (which may be empty, as with cosign), the public
// key as PEM.
func GenerateKeyPair(t KeyType, password []byte) (privatePEM, publicPEM []byte, err error) {
	details := protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
	if t == Ed25519 {
		details = protocommon.PublicKeyDetails_PKIX_ED25519
	}
	algo, err := signature.GetAlgorithmDetails(details)
	if err != nil {
		return nil, nil, err
	}
	kb, err := cosign.GenerateKeyPairWithAlgorithm(&algo, func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return nil, nil, fmt.Errorf("generating a %s key pair: %w", t, err)
	}
	return kb.PrivateBytes, kb.PublicBytes, nil
}

// loadVerifier reads a PEM public key the way `cosign verify --key` does.
func loadVerifier(pubPEM []byte) (signature.Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("reading the public key: %w", err))
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("loading the public key: %w", err))
	}
	return v, nil
}
