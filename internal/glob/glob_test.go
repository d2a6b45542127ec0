package glob

import (
	"strings"
	"testing"
	"time"
)

// TestManyStarsStayFast: a pattern of many ** against a deep path is
// quadratic, not exponential.
func TestManyStarsStayFast(t *testing.T) {
	pat := strings.Repeat("**/", 40) + "x"
	name := strings.Repeat("a/", 200) + "y"
	start := time.Now()
	if Match(pat, name, false) {
		t.Error("matched")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
	if !Match(pat, strings.Repeat("a/", 200)+"x", false) {
		t.Error("did not match")
	}
}
