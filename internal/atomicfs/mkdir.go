package atomicfs

import (
	"os"
	"path/filepath"
)

// MkdirAll is os.MkdirAll that also returns the directories it made,
// deepest first, so that a writer that fails can take them away again
// with RemoveEmpty and leave no trace.
func MkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return missing, nil
}

// RemoveEmpty removes dirs, deepest first, while they are empty.
func RemoveEmpty(dirs []string) {
	for _, d := range dirs {
		if os.Remove(d) != nil {
			return
		}
	}
}
