package build

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobuild/repro/pkg/fault"
)

func corpusFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "secrets", "positive", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSecretGuard(t *testing.T) {
	key := corpusFile(t, "private-key/rsa.pem")
	const head = "version: 1\nname: app\nlayers:\n  - name: app\n    contents:\n      - {path: /etc/ssl/private/test.key, source: test.key}\n      - {path: /etc/motd, content: \"hi\\n\"}\n"
	for _, tc := range []struct {
		name, yaml string
		code       fault.Kind
		stderr     []string
	}{
		{"blocked", head, fault.BadInput, []string{`layers[0] "app": /etc/ssl/private/test.key: rule private-key: -----BEGIN RSA PRIVATE KEY----- MIIE…(redacted)`, "nothing was written"}},
		{"allowed by path", head + "secrets:\n  allow:\n    - {path: /etc/ssl/private/test.key, reason: \"test fixture\"}\n", fault.OK, []string{"secret allowed", "secrets.allow[0]", "test fixture"}},
		{"allowed by glob and rule", head + "secrets:\n  allow:\n    - {path: \"/etc/**\", rule: private-key, reason: fixture}\n", fault.OK, []string{"secret allowed"}},
		{"allow for another rule", head + "secrets:\n  allow:\n    - {path: \"/etc/**\", rule: github-token, reason: fixture}\n", fault.BadInput, []string{"rule private-key"}},
		{"unknown rule", head + "secrets:\n  allow:\n    - {path: \"/etc/**\", rule: nope, reason: fixture}\n", fault.BadInput, []string{`secrets.allow[0].rule: unknown rule "nope"`}},
		{"env secret", "version: 1\nname: app\nlayers:\n  - contents:\n      - {path: /etc/motd, content: \"hi\\n\"}\nconfig:\n  env: {DB_PASSWORD: \"Zq8#rT2!vLp9@xW4mK\"}\n", fault.BadInput, []string{"config.env.DB_PASSWORD: rule env-secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := setup(t, tc.yaml, map[string]string{"test.key": key})
			var log bytes.Buffer
			o := opts(t, s)
			o.Log = slog.New(slog.NewTextHandler(&log, nil))
			_, err := Build(context.Background(), s, o)
			msg := log.String()
			if err != nil {
				msg += err.Error()
			}
			if fault.KindOf(err) != tc.code {
				t.Fatalf("kind %v, want %v: %v", fault.KindOf(err), tc.code, err)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(msg, want) {
					t.Errorf("missing %q in:\n%s", want, msg)
				}
			}
			if strings.Contains(msg, "MIIEow") && len(key) > 100 && strings.Contains(msg, key[40:80]) {
				t.Error("the key itself was printed")
			}
		})
	}
}

func TestRemovalWarning(t *testing.T) {
	s := setup(t, "version: 1\nname: app\nlayers:\n  - name: one\n    contents:\n      - {path: /opt/token.txt, content: x}\n  - name: two\n    contents:\n      - {path: /opt/token.txt, type: remove}\n", nil)
	var log bytes.Buffer
	o := opts(t, s)
	o.Log = slog.New(slog.NewTextHandler(&log, nil))
	if _, err := Build(context.Background(), s, o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "/opt/token.txt is removed by a later layer") {
		t.Errorf("no warning:\n%s", log.String())
	}
}
