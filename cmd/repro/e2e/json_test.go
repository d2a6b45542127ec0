package e2e

import "github.com/reprobuild/repro/pkg/rootfs"

// The machine output the tests read, as the binary prints it with --json:
// these mirror the command's JSON, field for field that the tests use, so a
// renamed or dropped field fails here as it would fail a user's script.

// buildResult is what build prints with --json and writes to --metadata-file.
type buildResult struct {
	Digest        string `json:"digest"`
	MediaType     string `json:"mediaType"`
	Name          string `json:"name"`
	Version       string `json:"version"`
	Epoch         int64  `json:"epoch"`
	FormatVersion string `json:"formatVersion"`
	Compression   string `json:"compression"`
	Manifests     []struct {
		Platform string `json:"platform"`
		Digest   string `json:"digest"`
		Size     int64  `json:"size"`
	} `json:"manifests"`
	Outputs []string `json:"outputs"`
	Tags    []string `json:"tags"`
}

// versionJSON is what version --json prints.
type versionJSON struct {
	Version       string   `json:"version"`
	Commit        string   `json:"commit"`
	Go            string   `json:"go"`
	FormatVersion string   `json:"formatVersion"`
	Compression   []string `json:"compression"`
	Libraries     []struct {
		Path    string `json:"path"`
		Version string `json:"version"`
	} `json:"libraries"`
}

// inspectJSON is what inspect --json prints.
type inspectJSON struct {
	Ref       string `json:"ref"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	Platforms []struct {
		Platform string `json:"platform"`
		Digest   string `json:"digest"`
		Layers   []struct {
			Digest    string `json:"digest"`
			DiffID    string `json:"diffID"`
			Size      int64  `json:"size"`
			MediaType string `json:"mediaType"`
		} `json:"layers"`
		Files []*rootfs.File `json:"files,omitempty"`
	} `json:"platforms"`
}
