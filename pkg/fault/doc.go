// Package fault classifies errors by what the user should do about them,
// so that the command layer can map them onto the contract's exit codes:
// a failed check (1), bad usage or input (2), and an operational failure
// (3). Library packages wrap their errors with BadInput, Operational or
// CheckFailed; errors that carry no class are treated as operational.
package fault
