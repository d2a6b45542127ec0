// Package units reads and writes byte sizes the one way repro's flags and
// reports do: binary units (K = 1024), as qemu-img and the Go runtime
// read them.
package units

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseBytes reads a byte count with an optional binary unit, K, M, G or
// T (either case), which may be followed by i, B or iB: 512, 10M, 64GiB,
// 256Mi, 1TB. Negative counts, and counts of 2^62 bytes or more, are not
// sizes.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "B"), "i")
	shift := 0
	if t != "" {
		switch t[len(t)-1] {
		case 'K', 'k':
			shift = 10
		case 'M', 'm':
			shift = 20
		case 'G', 'g':
			shift = 30
		case 'T', 't':
			shift = 40
		}
		if shift > 0 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n >= (1<<62)>>shift {
		return 0, fmt.Errorf("%q is not a size; write it like 512, 256M or 64GiB", s)
	}
	return n << shift, nil
}

// Bytes writes n for people: 512 B, 1.5 KiB, 12.0 MiB, 3.2 GiB.
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
