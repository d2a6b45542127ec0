package layer

import (
	"fmt"
	"syscall"

	"github.com/reprobuild/repro/internal/rawfile"
)

// openRegular opens the context file name for reading (internal/rawfile:
// plain system calls, a final symlink not followed, never blocking); what
// it opened must still be a regular file.
func openRegular(name string) (*rawfile.File, error) {
	f, err := rawfile.Open(name)
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := f.Stat(&st); err != nil {
		f.Close()
		return nil, err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("%s is no longer a regular file; do not edit the context during a build", name)
	}
	return f, nil
}
