// Package vcs reads what a build needs from the git repository holding the
// build context: HEAD's commit, its committer time (epoch: git), and
// git describe (the default .Version). It runs the git command; outside a
// repository, or without git, it reports that rather than failing.
package vcs
