// Package vcs reads what a build needs from the git repository holding the
// build context: the work tree's root, HEAD's commit, its committer time
// (epoch: git), git describe (the default .Version), whether the tree is
// dirty or the clone shallow, which of the files a build reads git does
// not track, and when each path and each line of the spec last changed
// (the layer epochs of output format 2; package layer's doc has the rule).
// It runs the git command and never writes to the repository; outside a
// repository, or without git, Read reports that rather than failing.
package vcs
