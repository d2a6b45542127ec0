package layer

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's struct stat, as both packages declare it.
var _ = [1]struct{}{}[unsafe.Sizeof(syscall.Stat_t{})-unsafe.Sizeof(unix.Stat_t{})]
var _ = [1]struct{}{}[unsafe.Sizeof(unix.Stat_t{})-unsafe.Sizeof(syscall.Stat_t{})]

// lstatAt is the lstat of name in the directory open as dir (fstatat: the
// kernel resolves one name, not the directory's path again), as an
// fs.FileInfo whose Sys is a *syscall.Stat_t, as os.Lstat's is.
func lstatAt(dir int, dirPath, name string) (fs.FileInfo, error) {
	fi := &statInfo{name: name}
	for {
		err := unix.Fstatat(dir, name, (*unix.Stat_t)(unsafe.Pointer(&fi.st)), unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "lstat", Path: filepath.Join(dirPath, name), Err: err}
		}
		return fi, nil
	}
}

// readlinkAt reads the symlink name in the directory open as dir.
func readlinkAt(dir int, dirPath, name string) (string, error) {
	for n := 256; ; n *= 2 {
		b := make([]byte, n)
		m, err := unix.Readlinkat(dir, name, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", &fs.PathError{Op: "readlink", Path: filepath.Join(dirPath, name), Err: err}
		}
		if m < n {
			return string(b[:m]), nil
		}
	}
}

// openDir opens the directory at path for the *At calls, as a bare
// descriptor: an os.File would try to add it to the network poller and
// set and clear O_NONBLOCK, five system calls a directory to no purpose.
func openDir(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// getdents is unix.Getdents (getdents64); a test's to replace.
var getdents = unix.Getdents

// dirent is a name a directory lists, and its type as the listing gives
// it (unix.DT_DIR, DT_REG, ...; DT_UNKNOWN where the file system does not
// say).
type dirent struct {
	name string
	typ  uint8
}

// readDir lists the directory open as dir, less . and .., in the order
// the kernel gives; buf is the getdents buffer, reused.
func readDir(dir int, dirPath string, buf []byte) ([]dirent, error) {
	var out []dirent
	for {
		n, err := getdents(dir, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "readdirent", Path: dirPath, Err: err}
		}
		if n <= 0 {
			return out, nil
		}
		// struct linux_dirent64: ino u64, off s64, reclen u16, type u8,
		// then the name, NUL-terminated.
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:18])) // the kernel's byte order
			if reclen < 19 || reclen > len(b) {
				return nil, &fs.PathError{Op: "readdirent", Path: dirPath, Err: unix.EIO}
			}
			rec := b[19:reclen]
			if i := bytes.IndexByte(rec, 0); i >= 0 {
				rec = rec[:i]
			}
			if name := string(rec); name != "." && name != ".." {
				out = append(out, dirent{name: name, typ: b[18]})
			}
			b = b[reclen:]
		}
	}
}

type statInfo struct {
	name string
	st   syscall.Stat_t
}

func (s *statInfo) Name() string       { return s.name }
func (s *statInfo) Size() int64        { return s.st.Size }
func (s *statInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }
func (s *statInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s *statInfo) Sys() any           { return &s.st }

// Mode is os.Lstat's mode for the stat.
func (s *statInfo) Mode() fs.FileMode {
	m := fs.FileMode(s.st.Mode & 0o777)
	switch s.st.Mode & syscall.S_IFMT {
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if s.st.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if s.st.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if s.st.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
