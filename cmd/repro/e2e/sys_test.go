package e2e

import (
	"syscall"
	"time"
)

func timeUnix(s int64) time.Time { return time.Unix(s, 0) }

func setXattr(path, name, value string) error {
	return syscall.Setxattr(path, name, []byte(value), 0)
}
