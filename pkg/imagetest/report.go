package imagetest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Formats of a report.
const (
	Text  = "text"
	JSON  = "json"
	JUnit = "junit"
)

// DefaultSuiteName is the JUnit test suite's name unless one is given, as
// container-structure-test names it.
const DefaultSuiteName = "container-structure-test.test"

// Write writes s in format (text, json or junit). suite names the JUnit
// test suite; empty gives DefaultSuiteName.
func (s *Summary) Write(w io.Writer, format, suite string) error {
	switch format {
	case Text, "":
		return s.WriteText(w)
	case JSON:
		return s.WriteJSON(w)
	case JUnit:
		return s.WriteJUnit(w, suite)
	}
	return fmt.Errorf("unknown report format %q; use text, json or junit", format)
}

// WriteJSON writes container-structure-test's JSON summary: one line.
func (s *Summary) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

type junitSuites struct {
	XMLName  xml.Name   `xml:"testsuites"`
	Failures int        `xml:"failures,attr"`
	Tests    int        `xml:"tests,attr"`
	Time     seconds    `xml:"time,attr"`
	Skipped  int        `xml:"skipped,attr,omitempty"`
	Suite    junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name  string      `xml:"name,attr"`
	Cases []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name     string        `xml:"name,attr"`
	Time     seconds       `xml:"time,attr"`
	Failures []string      `xml:"failure"`
	Skipped  *junitSkipped `xml:"skipped"`
	Stdout   string        `xml:"system-out,omitempty"`
	Stderr   string        `xml:"system-err,omitempty"`
}

// seconds is a JUnit time: decimal seconds to the microsecond (0.000010),
// never an exponent (1.0345e-05), which JUnit readers do not all take.
type seconds time.Duration

func (d seconds) MarshalXMLAttr(name xml.Name) (xml.Attr, error) {
	return xml.Attr{Name: name, Value: strconv.FormatFloat(time.Duration(d).Seconds(), 'f', 6, 64)}, nil
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit writes container-structure-test's JUnit XML: one testsuites
// element holding one testsuite, a testcase per test with a failure
// element per error (and, for a test that did not run, a skipped
// element), times in decimal seconds.
func (s *Summary) WriteJUnit(w io.Writer, suite string) error {
	if suite == "" {
		suite = DefaultSuiteName
	}
	doc := junitSuites{Failures: s.Fail, Tests: s.Total, Skipped: s.Skip, Time: seconds(s.Duration), Suite: junitSuite{Name: suite}}
	for _, r := range s.Results {
		c := junitCase{Name: r.Name, Time: seconds(r.Duration), Stdout: r.Stdout, Stderr: r.Stderr}
		if r.Skipped {
			c.Skipped = &junitSkipped{Message: strings.TrimPrefix(strings.Join(r.Errors, "; "), "skipped: ")}
		} else {
			c.Failures = r.Errors
		}
		doc.Suite.Cases = append(doc.Suite.Cases, c)
	}
	b, err := xml.Marshal(doc)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s%s\n", strings.ReplaceAll(xml.Header, "\n", ""), b)
	return err
}

// WriteText writes the report for people, laid out as
// container-structure-test lays out its own: a banner per test file, each
// test's outcome, then the totals.
func (s *Summary) WriteText(w io.Writer) error {
	width := 27
	file := "\x00"
	for _, r := range s.Results {
		if r.File != file {
			file = r.File
			title := fmt.Sprintf("====== Test file: %s ======", filepath.Base(file))
			width = len(title)
			bar := strings.Repeat("=", width)
			fmt.Fprintf(w, "\n%s\n%s\n%s\n", bar, title, bar)
		}
		fmt.Fprintf(w, "=== RUN: %s\n", r.Name)
		switch {
		case r.Skipped:
			fmt.Fprintln(w, "--- SKIP")
		case r.Pass:
			fmt.Fprintln(w, "--- PASS")
		default:
			fmt.Fprintln(w, "--- FAIL")
		}
		fmt.Fprintf(w, "duration: %s\n", r.Duration)
		if r.Stdout != "" {
			fmt.Fprintf(w, "stdout: %s\n", r.Stdout)
		}
		if r.Stderr != "" {
			fmt.Fprintf(w, "stderr: %s\n", r.Stderr)
		}
		for _, e := range r.Errors {
			fmt.Fprintf(w, "Error: %s\n", e)
		}
	}
	if width%2 == 0 {
		width++
	}
	if s.Total == 0 {
		_, err := fmt.Fprintln(w, "No tests ran: the test files hold none.")
		return err
	}
	bar := strings.Repeat("=", width)
	half := strings.Repeat("=", (width-9)/2)
	fmt.Fprintf(w, "\n%s\n%s RESULTS %s\n%s\n", bar, half, half, bar)
	fmt.Fprintf(w, "Passes:      %d\nFailures:    %d\n", s.Pass, s.Fail)
	if s.Skip > 0 {
		fmt.Fprintf(w, "Skipped:     %d\n", s.Skip)
	}
	fmt.Fprintf(w, "Duration:    %s\nTotal tests: %d\n\n", s.Duration, s.Total)
	verdict := "PASS"
	if s.Fail > 0 {
		verdict = "FAIL"
	}
	_, err := fmt.Fprintln(w, verdict)
	return err
}
