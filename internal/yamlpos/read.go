package yamlpos

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrTooLarge is wrapped by ReadFile's error for a file over its limit.
var ErrTooLarge = errors.New("file too large")

// ErrNotRegular is wrapped by ReadFile's error for what is not a regular
// file.
var ErrNotRegular = errors.New("not a regular file")

// ReadFile reads the regular file at name, at most max bytes of it. A
// bigger file is refused before anything is read (ErrTooLarge), and so is
// what is not a regular file, or a symbolic link to one (ErrNotRegular):
// a FIFO or a device could be read without end. Errors from the file
// system are returned as they are, wrapped.
func ReadFile(name string, max int64) ([]byte, error) {
	// Stat before opening: opening a FIFO to read waits for a writer.
	if st, err := os.Stat(name); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (it is %s)", name, ErrNotRegular, describeMode(st.Mode()))
	}
	// O_NONBLOCK, in case it became a FIFO since: the open does not wait
	// (and the Stat below refuses it).
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (it is %s)", name, ErrNotRegular, describeMode(st.Mode()))
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s: %w: %d bytes, more than the %d (%s) that repro reads", name, ErrTooLarge, st.Size(), max, Size(max))
	}
	// The size may change while it is read: never take more than max.
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: %w: more than the %d bytes (%s) that repro reads", name, ErrTooLarge, max, Size(max))
	}
	return data, nil
}

// Size prints a byte count in the largest binary unit that divides it.
func Size(n int64) string {
	for _, u := range []struct {
		s string
		n int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.n && n%u.n == 0 {
			return fmt.Sprintf("%d %s", n/u.n, u.s)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a regular file"
}
