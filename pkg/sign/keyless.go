package sign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/sigstore/fulcio/pkg/api"
	rekorclient "github.com/sigstore/rekor/pkg/client"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/reprobuild/repro/pkg/fault"
)

// Public Sigstore services, the defaults of keyless signing.
const (
	PublicFulcioURL = "https://fulcio.sigstore.dev"
	PublicRekorURL  = "https://rekor.sigstore.dev"
)

// KeylessOptions configure keyless signing: an ephemeral key, certified by
// Fulcio for the identity of an OIDC token, each signature recorded in
// Rekor.
type KeylessOptions struct {
	FulcioURL string
	RekorURL  string
	// IdentityToken is the OIDC ID token (a JWT) that Fulcio exchanges for
	// a certificate. repro runs no interactive login flow: CI systems
	// (GitHub Actions, GitLab, ...) provide one.
	IdentityToken string
	UserAgent     string
}

// ErrNoIdentityToken: keyless signing was asked for with no
// KeylessOptions.IdentityToken.
var ErrNoIdentityToken = errors.New("keyless signing needs an OIDC identity token")

// URLError is a KeylessOptions URL (Option: FulcioURL or RekorURL) that
// does not parse.
type URLError struct {
	Option string
	Err    error
}

func (e *URLError) Error() string { return e.Option + ": " + e.Err.Error() }

func (e *URLError) Unwrap() error { return e.Err }

// NewKeylessSigner makes an ephemeral ECDSA P-256 key, asks Fulcio for a
// certificate of it for the token's identity, and returns a signer that
// uploads every signature and attestation to Rekor and attaches the
// certificate, its chain and Rekor's bundle to it, as cosign sign does.
//
// Unlike signing with a key, this talks to Fulcio and Rekor. It is built
// with sigstore's and cosign's packages but was not tested against the
// public services (no internet where repro is developed); verification of
// keyless signatures (which needs Sigstore's trust roots, fetched with
// TUF) is not part of repro: use cosign verify --certificate-identity.
func NewKeylessSigner(ctx context.Context, o KeylessOptions) (*Signer, error) {
	if o.IdentityToken == "" {
		return nil, fault.Bad(ErrNoIdentityToken)
	}
	if o.FulcioURL == "" {
		o.FulcioURL = PublicFulcioURL
	}
	if o.RekorURL == "" {
		o.RekorURL = PublicRekorURL
	}
	subject, err := tokenSubject(o.IdentityToken)
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("reading the identity token: %w", err))
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fault.Op(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, fault.Op(err)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, fault.Op(err)
	}
	// Proof of possession: the key signs the token's subject.
	proof, err := sv.SignMessage(strings.NewReader(subject))
	if err != nil {
		return nil, fault.Op(err)
	}
	fu, err := url.Parse(o.FulcioURL)
	if err != nil {
		return nil, fault.Bad(&URLError{Option: "FulcioURL", Err: err})
	}
	var fopts []api.ClientOption
	if o.UserAgent != "" {
		fopts = append(fopts, api.WithUserAgent(o.UserAgent))
	}
	resp, err := api.NewClient(fu, fopts...).SigningCert(api.CertificateRequest{
		PublicKey:          api.Key{Content: pubPEM},
		SignedEmailAddress: proof,
	}, o.IdentityToken)
	if err != nil {
		return nil, fault.Op(fmt.Errorf("asking %s for a certificate: %w", o.FulcioURL, err))
	}
	var ropts []rekorclient.Option
	if o.UserAgent != "" {
		ropts = append(ropts, rekorclient.WithUserAgent(o.UserAgent))
	}
	rc, err := rekorclient.GetRekorClient(o.RekorURL, ropts...)
	if err != nil {
		return nil, fault.Bad(&URLError{Option: "RekorURL", Err: err})
	}
	return &Signer{sv: sv, pub: pubPEM, alg: "ecdsa", cert: resp.CertPEM, chain: resp.ChainPEM, rekor: rc}, nil
}

// tokenSubject is the identity Fulcio certifies: the verified email of
// the token, else its subject (as sigstore's oauthflow reads it). The
// token's signature is Fulcio's to check.
func tokenSubject(tok string) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", errors.New("not a JWT (three dot-separated parts)")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", fmt.Errorf("the claims are not base64url: %w", err)
	}
	var c struct {
		Email    string `json:"email"`
		Verified any    `json:"email_verified"`
		Subject  string `json:"sub"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", fmt.Errorf("the claims are not JSON: %w", err)
	}
	if c.Email != "" {
		if v, ok := c.Verified.(bool); !ok || !v {
			if s, ok := c.Verified.(string); !ok || s != "true" {
				return "", errors.New("the email is not verified by the identity provider")
			}
		}
		return c.Email, nil
	}
	if c.Subject == "" {
		return "", errors.New("no email and no subject among the claims")
	}
	return c.Subject, nil
}
