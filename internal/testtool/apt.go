package testtool

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Apt sets up apt in a temporary directory of the test's: sourcesList (lines
// of the form "deb [signed-by=KEYRING] URI SUITE COMPONENT...") as its only
// sources, an empty status file, amd64, no recommends and none of the host's
// configuration. It runs apt-get update there and returns the environment that
// points apt-get and apt-cache at that setup, with the update's output. An
// update that fails, or reports an error ("E: "), fails the test; callers that
// want no warnings either check the output for "W: ".
//
// The tests that hold repro's resolver and locks to apt's own answers (the
// apt package's oracles, the golden e2e test) share this one setup, so that
// they all ask the same apt.
func Apt(t testing.TB, sourcesList string) (env []string, update string) {
	t.Helper()
	d := t.TempDir()
	for _, sub := range []string{"etc/parts", "etc/sources.list.d", "etc/preferences.d", "etc/trusted.gpg.d", "lists/partial", "cache/archives/partial", "log", "state"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`Dir::Etc::Parts "%[1]s/etc/parts";
Dir::Etc::Main "/dev/null";
Dir::Etc::SourceList "%[1]s/etc/sources.list";
Dir::Etc::SourceParts "%[1]s/etc/sources.list.d";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "%[1]s/etc/preferences.d";
Dir::Etc::TrustedParts "%[1]s/etc/trusted.gpg.d";
Dir::State "%[1]s/state";
Dir::State::Lists "%[1]s/lists";
Dir::State::status "%[1]s/status";
Dir::Cache "%[1]s/cache";
Dir::Log "%[1]s/log";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
APT::Install-Recommends "false";
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";
Debug::NoLocking "true";
`, d)
	for f, b := range map[string]string{"etc/sources.list": sourcesList, "status": "", "apt.conf": conf} {
		if err := os.WriteFile(filepath.Join(d, f), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env = []string{"APT_CONFIG=" + filepath.Join(d, "apt.conf"), "LC_ALL=C"}
	cmd := exec.CommandContext(t.Context(), "apt-get", "-q", "update")
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || strings.Contains(out.String(), "E: ") {
		t.Fatalf("apt-get -q update: %v\n%s", err, out.String())
	}
	return env, out.String()
}
