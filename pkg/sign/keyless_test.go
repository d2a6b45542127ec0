package sign

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

func jwt(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(claims)) + "." + enc([]byte("sig"))
}

func TestTokenSubject(t *testing.T) {
	for _, c := range []struct {
		claims, want string
		ok           bool
	}{
		{`{"email":"a@example.com","email_verified":true,"sub":"123"}`, "a@example.com", true},
		{`{"email":"a@example.com","email_verified":"true"}`, "a@example.com", true},
		{`{"email":"a@example.com","email_verified":false}`, "", false},
		{`{"sub":"repo:org/app:ref:refs/heads/main"}`, "repo:org/app:ref:refs/heads/main", true},
		{`{}`, "", false},
	} {
		got, err := tokenSubject(jwt(c.claims))
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("%s: %q, %v", c.claims, got, err)
		}
	}
	if _, err := tokenSubject("not-a-jwt"); err == nil {
		t.Error("a non-JWT was accepted")
	}
}

// TestKeylessWithFakes drives keyless signing against fake Fulcio and
// Rekor servers: the certificate request carries the token and a proof of
// possession over its subject, and every signature and attestation gets
// the certificate, its chain and a Rekor bundle. (The real services were
// not reachable where this was written.)
func TestKeylessWithFakes(t *testing.T) {
	ca, caKey := testCA(t)
	tok := jwt(`{"email":"dev@example.com","email_verified":true}`)
	fulcio := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/signingCert" || r.Header.Get("Authorization") != "Bearer "+tok {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var req struct {
			PublicKey struct {
				Content []byte `json:"content"`
			} `json:"publicKey"`
			SignedEmailAddress []byte `json:"signedEmailAddress"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(req.PublicKey.Content)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256([]byte("dev@example.com"))
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum[:], req.SignedEmailAddress) {
			http.Error(w, "no proof of possession", http.StatusBadRequest)
			return
		}
		leaf := &x509.Certificate{SerialNumber: big.NewInt(2), EmailAddresses: []string{"dev@example.com"},
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(10 * time.Minute),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
		der, err := x509.CreateCertificate(rand.Reader, leaf, ca, pub, caKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
		pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: der})
		pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	}))
	defer fulcio.Close()
	uploads := 0
	rekor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/log/entries" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		uploads++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"%064x":{"body":%q,"integratedTime":1700000000,"logID":"%064x","logIndex":%d,"verification":{"signedEntryTimestamp":"c2V0"}}}`,
			uploads, base64.StdEncoding.EncodeToString(body), 7, uploads)
	}))
	defer rekor.Close()

	ctx := context.Background()
	s, err := NewKeylessSigner(ctx, KeylessOptions{FulcioURL: fulcio.URL, RekorURL: rekor.URL, IdentityToken: tok})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Keyless() || s.Deterministic() {
		t.Errorf("Keyless %v, Deterministic %v", s.Keyless(), s.Deterministic())
	}
	h := hashOf(t, "sha256:"+strings.Repeat("a", 64))
	sig, err := s.signImage(ctx, "example.com/app", h)
	if err != nil {
		t.Fatal(err)
	}
	att, err := s.attest(ctx, "example.com/app", h, Attestation{PredicateType: "https://example.com/p", Predicate: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if uploads != 2 {
		t.Errorf("%d Rekor uploads, want 2", uploads)
	}
	for _, x := range []interface {
		Annotations() (map[string]string, error)
	}{sig, att} {
		ann, err := x.Annotations()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"dev.sigstore.cosign/certificate", "dev.sigstore.cosign/chain", "dev.sigstore.cosign/bundle"} {
			if ann[k] == "" {
				t.Errorf("annotation %s is missing: %v", k, ann)
			}
		}
	}
	if _, err := NewKeylessSigner(ctx, KeylessOptions{FulcioURL: fulcio.URL, RekorURL: rekor.URL}); err == nil {
		t.Error("keyless signing without a token was accepted")
	}
}

func testCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake fulcio"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func hashOf(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
