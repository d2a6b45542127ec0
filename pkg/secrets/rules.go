package secrets

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"hash/crc32"
	"math"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Rules lists every rule ID.
var Rules = []string{
	"private-key", "pkcs12", "aws-access-key", "gcp-service-account", "github-token",
	"gitlab-token", "slack-token", "npm-token", "docker-config-auth",
	"kubeconfig-credentials", "npmrc-token", "git-credentials", "netrc-password", "env-secret",
}

// KnownRule reports whether id names a rule.
func KnownRule(id string) bool {
	for _, r := range Rules {
		if r == id {
			return true
		}
	}
	return false
}

// hit is a rule match inside some content.
type hit struct {
	rule   string
	offset int
	text   string // the matched text, redacted before anyone sees it
}

// contentRules run on every file's bytes; name rules need the path too.
func scanContent(p string, data []byte) []hit {
	hits := fileRules(p, data)
	if !mayHold(data) {
		return hits
	}
	if bytes.Contains(data, []byte("PRIVATE KEY")) {
		hits = append(hits, privateKeys(data)...)
	}
	if bytes.Contains(data, []byte("AKIA")) || bytes.Contains(data, []byte("ASIA")) {
		hits = append(hits, awsKeys(data)...)
	}
	if bytes.Contains(data, []byte("service_account")) {
		hits = append(hits, gcpServiceAccount(data)...)
	}
	if containsAny(data, ghPrefixes) {
		hits = append(hits, githubTokens(data)...)
	}
	if bytes.Contains(data, []byte("glpat-")) {
		hits = append(hits, matchAll(data, gitlabRE, "gitlab-token", notPlaceholder)...)
	}
	if bytes.Contains(data, []byte("xox")) || bytes.Contains(data, []byte("hooks.slack.com")) {
		hits = append(hits, matchAll(data, slackRE, "slack-token", notPlaceholder)...)
		hits = append(hits, matchAll(data, slackHookRE, "slack-token", notPlaceholder)...)
	}
	if bytes.Contains(data, []byte("npm_")) {
		hits = append(hits, npmTokens(data)...)
	}
	return hits
}

// mayHold reports whether any content rule's marker is in data. It is
// what a clean file costs, so it makes few passes: one per marker without
// an underscore, and one over the underscores for the tokens that have one
// (ghp_ … npm_, github_pat_, service_account).
func mayHold(data []byte) bool {
	for _, m := range plainMarkers {
		if bytes.Contains(data, m) {
			return true
		}
	}
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '_')
		if j < 0 {
			return false
		}
		i += j
		for _, m := range underscoreMarkers {
			if i >= len(m) && string(data[i-len(m):i]) == m {
				return true
			}
		}
		i++
	}
}

var (
	plainMarkers      = [][]byte{[]byte("PRIVATE KEY"), []byte("AKIA"), []byte("ASIA"), []byte("glpat-"), []byte("xox"), []byte("hooks.slack.com")}
	underscoreMarkers = []string{"ghp", "gho", "ghu", "ghs", "ghr", "github", "npm", "service"}
)

var ghPrefixes = [][]byte{[]byte("ghp_"), []byte("gho_"), []byte("ghu_"), []byte("ghs_"), []byte("ghr_"), []byte("github_pat_")}

func containsAny(data []byte, subs [][]byte) bool {
	for _, s := range subs {
		if bytes.Contains(data, s) {
			return true
		}
	}
	return false
}

var (
	pemRE       = regexp.MustCompile(`-----BEGIN ((?:RSA |EC |DSA |ENCRYPTED |OPENSSH |PGP )?PRIVATE KEY(?: BLOCK)?)-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----`)
	awsIDRE     = regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`)
	awsSecretRE = regexp.MustCompile(`(?:^|[^A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)`)
	githubRE    = regexp.MustCompile(`\b(gh[pousr])_([A-Za-z0-9]{36})\b`)
	githubPATRE = regexp.MustCompile(`\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b`)
	gitlabRE    = regexp.MustCompile(`\bglpat-[A-Za-z0-9_-]{20}\b`)
	slackRE     = regexp.MustCompile(`\bxox[abprs]-[0-9]{8,}-[0-9A-Za-z-]{8,}\b`)
	slackHookRE = regexp.MustCompile(`https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,}`)
	npmRE       = regexp.MustCompile(`\bnpm_([A-Za-z0-9]{36})\b`)
)

func privateKeys(data []byte) []hit {
	var hits []hit
	for _, loc := range pemRE.FindAllSubmatchIndex(data, -1) {
		block := data[loc[0]:loc[1]]
		kind := string(data[loc[2]:loc[3]])
		if validPrivateKey(kind, block) {
			hits = append(hits, hit{rule: "private-key", offset: loc[0], text: string(block)})
		}
	}
	return hits
}

// validPrivateKey decodes a PEM-armored private key far enough to know it
// is one, so documentation that mentions "PRIVATE KEY" stays clean.
func validPrivateKey(kind string, block []byte) bool {
	switch kind {
	case "OPENSSH PRIVATE KEY":
		b, _ := pem.Decode(block)
		return b != nil && bytes.HasPrefix(b.Bytes, []byte("openssh-key-v1\x00"))
	case "PGP PRIVATE KEY BLOCK":
		return pgpSecretKey(block)
	}
	b, _ := pem.Decode(block)
	if b == nil {
		return false
	}
	switch kind {
	case "RSA PRIVATE KEY":
		if _, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			return true
		}
		// Legacy (RFC 1423) encrypted PEM is still a key.
		return strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED")
	case "EC PRIVATE KEY":
		_, err := x509.ParseECPrivateKey(b.Bytes)
		return err == nil
	case "PRIVATE KEY":
		_, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		return err == nil
	case "ENCRYPTED PRIVATE KEY", "DSA PRIVATE KEY":
		return len(b.Bytes) > 64 && b.Bytes[0] == 0x30 // an ASN.1 SEQUENCE of key size
	}
	return false
}

// pgpSecretKey reports whether an armored block starts with an OpenPGP
// secret-key packet (tag 5) or secret-subkey packet (tag 7).
func pgpSecretKey(block []byte) bool {
	s := string(block)
	start := strings.Index(s, "\n\n")
	if start < 0 {
		start = strings.Index(s, "\r\n\r\n")
	}
	if start < 0 {
		return false
	}
	body := s[start:]
	if end := strings.Index(body, "\n="); end >= 0 {
		body = body[:end]
	} else if end := strings.Index(body, "-----END"); end >= 0 {
		body = body[:end]
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	if err != nil || len(raw) < 2 || raw[0]&0x80 == 0 {
		return false
	}
	tag := int(raw[0]&0x3f) >> 2 // old format
	if raw[0]&0x40 != 0 {
		tag = int(raw[0] & 0x3f) // new format
	}
	return tag == 5 || tag == 7
}

func awsKeys(data []byte) []hit {
	var hits []hit
	for _, loc := range awsIDRE.FindAllIndex(data, -1) {
		id := string(data[loc[0]:loc[1]])
		lo, hi := max(0, loc[0]-300), min(len(data), loc[1]+300)
		found := false
		for _, m := range awsSecretRE.FindAllSubmatch(data[lo:hi], -1) {
			secret := string(m[1])
			if entropy(secret) > 4.0 && strings.ContainsAny(secret, "0123456789") && hasUpperAndLower(secret) {
				hits = append(hits, hit{rule: "aws-access-key", offset: loc[0], text: id + " " + secret})
				found = true
				break
			}
		}
		// A key ID alone is half a credential, and often the half that
		// leaked with the other nearby: it counts, unless it is a
		// placeholder such as AWS's own AKIAIOSFODNN7EXAMPLE.
		if !found && notPlaceholder(id[4:]) {
			hits = append(hits, hit{rule: "aws-access-key", offset: loc[0], text: id})
		}
	}
	return hits
}

func gcpServiceAccount(data []byte) []hit {
	var v struct {
		Type       string `json:"type"`
		PrivateKey string `json:"private_key"`
		Email      string `json:"client_email"`
	}
	if json.Unmarshal(data, &v) != nil || v.Type != "service_account" {
		return nil
	}
	if m := pemRE.FindStringSubmatch(v.PrivateKey); m != nil && validPrivateKey(m[1], []byte(m[0])) {
		return []hit{{rule: "gcp-service-account", text: v.Email + " " + v.PrivateKey}}
	}
	return nil
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// checksummed reports whether a 36-character token body ends in the
// base62 CRC-32 of its first 30 characters, as GitHub and npm tokens do.
func checksummed(body string) bool {
	if len(body) != 36 {
		return false
	}
	sum := crc32.ChecksumIEEE([]byte(body[:30]))
	var enc [6]byte
	for i := 5; i >= 0; i-- {
		enc[i] = base62[sum%62]
		sum /= 62
	}
	return string(enc[:]) == body[30:]
}

func githubTokens(data []byte) []hit {
	var hits []hit
	for _, m := range githubRE.FindAllSubmatchIndex(data, -1) {
		// The checksum covers the prefix and the body's random part.
		tok := string(data[m[0]:m[1]])
		if checksummedToken(tok) || notPlaceholder(string(data[m[4]:m[5]])) {
			hits = append(hits, hit{rule: "github-token", offset: m[0], text: tok})
		}
	}
	for _, loc := range githubPATRE.FindAllIndex(data, -1) {
		tok := string(data[loc[0]:loc[1]])
		if notPlaceholder(tok) {
			hits = append(hits, hit{rule: "github-token", offset: loc[0], text: tok})
		}
	}
	return hits
}

// checksummedToken checks a prefix_body token: the last 6 base62
// characters are the CRC-32 of the 30 random ones before them.
func checksummedToken(tok string) bool {
	i := strings.IndexByte(tok, '_')
	return i > 0 && checksummed(tok[i+1:])
}

func npmTokens(data []byte) []hit {
	var hits []hit
	for _, m := range npmRE.FindAllSubmatchIndex(data, -1) {
		tok := string(data[m[0]:m[1]])
		if body := string(data[m[2]:m[3]]); checksummed(body) || notPlaceholder(body) {
			hits = append(hits, hit{rule: "npm-token", offset: m[0], text: tok})
		}
	}
	return hits
}

func matchAll(data []byte, re *regexp.Regexp, rule string, keep func(string) bool) []hit {
	var hits []hit
	for _, loc := range re.FindAllIndex(data, -1) {
		t := string(data[loc[0]:loc[1]])
		if keep(t) {
			hits = append(hits, hit{rule: rule, offset: loc[0], text: t})
		}
	}
	return hits
}

// notPlaceholder rejects values that stand for a secret rather than being
// one: ${VAR}, $(cmd), <token>, {{tmpl}}, x-runs and the usual words.
func notPlaceholder(v string) bool {
	l := strings.ToLower(v)
	for _, p := range []string{"${", "$(", "{{", "<", "xxxx", "0000", "example", "placeholder", "changeme", "your_", "your-", "dummy", "redacted", "****"} {
		if strings.Contains(l, p) {
			return false
		}
	}
	return entropy(v) >= 3.0
}

// entropy is the Shannon entropy of s in bits per character.
func entropy(s string) float64 {
	if s == "" {
		return 0
	}
	counts := map[rune]int{}
	for _, r := range s {
		counts[r]++
	}
	var h float64
	n := float64(len([]rune(s)))
	for _, c := range counts {
		p := float64(c) / n
		h -= p * math.Log2(p)
	}
	return h
}

func hasUpperAndLower(s string) bool {
	return strings.ToUpper(s) != s && strings.ToLower(s) != s
}

// fileRules are the rules for credential files, known by name.
func fileRules(p string, data []byte) []hit {
	base := path.Base(p)
	switch {
	case base == "config.json" && strings.Contains(p, ".docker/"):
		return dockerConfig(data)
	case base == "config" && strings.Contains(p, ".kube/") || base == "kubeconfig" || strings.HasSuffix(base, ".kubeconfig"):
		return kubeconfig(data)
	case base == ".npmrc" || base == "npmrc":
		return lineRule(data, regexp.MustCompile(`(?m)(?:_authToken|_auth|_password)\s*=\s*(\S+)`), "npmrc-token")
	case base == ".git-credentials":
		return lineRule(data, regexp.MustCompile(`(?m)^[a-z][a-z0-9+.-]*://[^:@/\s]+:([^@\s]+)@\S+`), "git-credentials")
	case base == ".netrc" || base == "_netrc":
		return lineRule(data, regexp.MustCompile(`(?:^|\s)password\s+(\S+)`), "netrc-password")
	case strings.HasSuffix(base, ".p12") || strings.HasSuffix(base, ".pfx"):
		// PKCS#12: an ASN.1 SEQUENCE whose first element is INTEGER 3.
		if len(data) > 8 && data[0] == 0x30 && bytes.Contains(data[:min(len(data), 8)], []byte{0x02, 0x01, 0x03}) {
			return []hit{{rule: "pkcs12", text: "PKCS#12 key store"}}
		}
	}
	return nil
}

func lineRule(data []byte, re *regexp.Regexp, rule string) []hit {
	var hits []hit
	for _, m := range re.FindAllSubmatchIndex(data, -1) {
		if v := string(data[m[2]:m[3]]); notPlaceholder(v) && len(v) >= 6 {
			hits = append(hits, hit{rule: rule, offset: m[0], text: string(data[m[0]:m[1]])})
		}
	}
	return hits
}

func dockerConfig(data []byte) []hit {
	var cfg struct {
		Auths map[string]struct {
			Auth     string `json:"auth"`
			Password string `json:"password"`
		} `json:"auths"`
	}
	if json.Unmarshal(data, &cfg) != nil {
		return nil
	}
	var hits []hit
	for host, a := range cfg.Auths {
		if a.Password != "" && notPlaceholder(a.Password) {
			hits = append(hits, hit{rule: "docker-config-auth", text: host + " password " + a.Password})
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			continue
		}
		if u, pw, ok := strings.Cut(string(raw), ":"); ok && u != "" && pw != "" && notPlaceholder(pw) {
			hits = append(hits, hit{rule: "docker-config-auth", text: host + " auth " + a.Auth})
		}
	}
	return hits
}

var kubeCredRE = regexp.MustCompile(`(?m)^\s*(token|password|client-key-data)\s*:\s*["']?([^\s"']+)`)

func kubeconfig(data []byte) []hit {
	if !bytes.Contains(data, []byte("users:")) {
		return nil
	}
	var hits []hit
	for _, m := range kubeCredRE.FindAllSubmatchIndex(data, -1) {
		if v := string(data[m[4]:m[5]]); notPlaceholder(v) && len(v) >= 8 {
			hits = append(hits, hit{rule: "kubeconfig-credentials", offset: m[0], text: string(data[m[0]:m[1]])})
		}
	}
	return hits
}

var (
	envNameRE = regexp.MustCompile(`(?i)(pass(word|wd)?|secret|token|api_?key|private_?key|credential)`)
	// envNotSecretRE are names that say what a secret is about, not the
	// secret: where it lives, how long it is, whether it is on.
	envNotSecretRE = regexp.MustCompile(`(?i)_(file|path|dir|url|uri|endpoint|host|port|user|username|name|id|type|length|len|ttl|timeout|expiry|header|enabled|required)$`)
	envMaskRE      = regexp.MustCompile(`^(\*+|x+|X+|<[^>]*>|redacted|REDACTED)$`)
)

// envSecret applies env-secret to one variable: a name like a password,
// secret, token or key, and a value that is one. References (${X},
// $(cat …), {{…}}), paths, numbers, booleans, masks (****, <password>)
// and values under 4 characters are not; anything else is, weak or
// strong: a password baked into an image is leaked however weak it is.
func envSecret(name, value string) []hit {
	if !envNameRE.MatchString(name) || envNotSecretRE.MatchString(name) {
		return nil
	}
	v := strings.TrimSpace(value)
	l := strings.ToLower(v)
	switch {
	case len(v) < 4,
		strings.Contains(v, "${"), strings.Contains(v, "$("), strings.Contains(v, "{{"),
		strings.HasPrefix(v, "/"), strings.HasPrefix(v, "./"), strings.HasPrefix(l, "file:"),
		envMaskRE.MatchString(v):
		return nil
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return nil
	}
	switch l {
	case "true", "false", "yes", "no", "on", "off", "none", "null", "disabled", "enabled":
		return nil
	}
	return []hit{{rule: "env-secret", text: name + "=" + value}}
}
