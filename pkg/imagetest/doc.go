// Package imagetest runs structure tests against an image without running
// it: container-structure-test's test files (schema 2.0.0, and 1.0.0), read from the
// layers as they stream past, with no extraction, no root and no daemon.
// Only commandTests run a container, through podman, and only when the
// caller gives a Runtime; without one they are reported as skipped, never
// as passed.
//
// # Compatibility
//
// The same YAML (or JSON) file gives the same verdicts as
// container-structure-test, whose semantics are kept on purpose, quirks
// included:
//
//   - fileExistenceTests: shouldExist defaults to true; uid and gid default
//     to -1, "not checked"; permissions is compared with Go's
//     fs.FileMode.String() of the path ("-rwxr-xr-x", "drwxr-x---",
//     "Lrwxrwxrwx", "urwxr-xr-x" for setuid); isExecutableBy is any (one
//     of the three x bits), owner, group or other; $VAR in the path is
//     expanded from the image's environment (with globalEnvVars).
//   - A path is looked up as a container sees it: symbolic links on the
//     way are followed inside the image; the last component is not
//     followed for fileExistenceTests (a link is reported as itself, as
//     container-structure-test's docker driver does) and is followed for
//     fileContentTests. A hard link is the file it links to. A directory
//     that the layers imply without an entry of its own exists (0755,
//     root). Owners are the layers' own uid and gid: ownership checks
//     work, unlike with container-structure-test's tar driver, which
//     extracts as the user running it.
//   - fileContentTests: expectedContents and excludedContents are Go
//     regular expressions matched anywhere in the content.
//   - metadataTest: envVars and labels must be set, to the value or, with
//     isRegex, to a value the expression matches; unboundEnvVars must not be
//     set; entrypoint and cmd are checked when given, and an empty list
//     means the config's must be empty; workdir and user are checked when
//     not empty; exposedPorts, unexposedPorts, volumes and
//     unmountedVolumes are checked one by one. Exposed ports are compared
//     without their protocol, as container-structure-test compares them:
//     "8080" finds the config's "8080/tcp", and "8080/tcp" finds nothing
//     (its issue #240); the failure message says so.
//   - commandTests: the command and args have $VAR expanded from the
//     image's environment; the container runs with no entrypoint, the
//     globalEnvVars and the test's envVars set, and containerRunOptions
//     (user, privileged, allocateTty, envVars, envFile, capabilities,
//     bindMounts) as podman flags. Setup commands run one by one, each
//     committed into the image the next runs in; teardown commands are
//     not run, since every container and image of the test is removed
//     after it (as with container-structure-test's docker driver).
//   - Results are named "Command Test: NAME", "File Content Test: NAME",
//     "File Existence Test: NAME", "License Test" and "Metadata Test", and
//     run file by file in that order, container-structure-test's.
//
// # Differences, all stricter
//
// Unknown keys are errors, located file:line:col. So are what
// container-structure-test reports while running: a missing or unknown
// schemaVersion, a test without a name or path, a command test without a
// command, an empty setup command, a regular expression that does not
// compile, an isExecutableBy other than the four words, and a permissions
// string that FileMode.String() cannot print. The keys container-structure-test
// renamed in v1.13.0 (metadataTest env and unboundEnv, now envVars and
// unboundEnvVars) are refused, as it refuses them, naming the new key. A
// test file is one YAML document, and at most MaxTestFileSize bytes; its
// aliases expand within the budget of internal/yamlpos. A run with no
// tests at all fails.
//
// # Schema 1.0.0 and licence tests
//
// Files of schema 1.0.0 are read as container-structure-test reads them:
// a command test's command is a list (the program, then its arguments);
// there is no metadataTest or containerRunOptions, and
// fileExistenceTests check no owners or executable bits (those keys are
// refused with a message). licenseTests (both schemas) run as upstream's:
// with debian: true every directory right under /usr/share/doc (but
// libgnutls30's) must hold a copyright file, and that file, like each of
// files:, must not name AGPL or WTFPL (case-insensitively). They are
// reported as "License Test", after the content tests.
//
// # Reports
//
// Summary.WriteJSON writes container-structure-test's JSON summary (Pass,
// Fail, Total, Duration in nanoseconds, Results with Name, Pass, Stdout,
// Stderr, Errors, Duration), plus Skip and a result's Skipped when a test
// did not run; Total counts skipped tests. Summary.WriteJUnit writes its
// JUnit XML: <testsuites failures tests time> around one <testsuite
// name="container-structure-test.test"> of <testcase name time> elements,
// a <failure> per error, and <skipped message> for a test that did not
// run. Summary.WriteText lays results out as its text output does.
package imagetest
