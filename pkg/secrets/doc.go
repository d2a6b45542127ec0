// Package secrets is the secret guard: high-precision rules that find
// credentials in the files and config a build adds, and the allow-list
// that is the only way past them.
//
// A finding must be what it claims. Private keys must decode (PEM to a
// key that x509 parses, OpenSSH's key format, an OpenPGP secret-key
// packet, a PKCS#12 container); credential files (.docker/config.json,
// kubeconfig, .npmrc, .git-credentials, .netrc) must hold a credential,
// not a placeholder like ${TOKEN}. Tokens count by their shape, as
// gitleaks counts them, with or without a valid checksum (test fixtures
// and revoked tokens lack one, and a leak is a leak), unless they are
// placeholders (xxxx, 0000, EXAMPLE, low entropy). Cheap literal markers
// gate every rule, so clean files cost one scan for a handful of byte
// strings.
//
// Rules (the IDs that allow entries name):
//
//	private-key             PEM, OpenSSH and OpenPGP private keys
//	pkcs12                  .p12/.pfx key stores
//	aws-access-key          an AKIA/ASIA key ID, with or without a 40-character secret beside it
//	gcp-service-account     a service-account JSON key
//	github-token            ghp_/gho_/ghu_/ghs_/ghr_, github_pat_
//	gitlab-token            glpat-
//	slack-token             xoxb-/xoxp-/xoxa-/xoxr-/xoxs- tokens and hooks.slack.com webhooks
//	npm-token               npm_
//	docker-config-auth      a docker config.json with an auths entry holding user:password
//	kubeconfig-credentials  a kubeconfig whose user has a token, password or client key
//	npmrc-token             an .npmrc _authToken, _auth or _password
//	git-credentials         a .git-credentials URL with a password
//	netrc-password          a .netrc/_netrc password
//	env-secret              a config env var named like a password, secret, token or key, with a value
//	                        (not a reference like ${X}, a path, a number, a boolean or a mask)
package secrets
