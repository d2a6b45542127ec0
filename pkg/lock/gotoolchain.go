package lock

import "github.com/reprobuild/repro/pkg/spec"

// PinGo sets f's Go toolchain pin for s, which old (nil for none) may
// already hold, and returns the change (nil when there is none). A spec
// without go: entries pins none. resolve names the toolchain to pin and
// says whether the module declares it (go.mod's toolchain line): a
// declared toolchain is pinned whatever old says; otherwise old's pin is
// kept unless update.
func (f *File) PinGo(s *spec.Spec, old *File, update bool, resolve func() (name string, declared bool, err error)) (*Change, error) {
	prev := ""
	if old != nil {
		prev = old.Go
	}
	if !s.HasGo() {
		f.Go = ""
		if prev != "" {
			return &Change{Kind: "removed", Key: "go toolchain", From: prev}, nil
		}
		return nil, nil
	}
	name, declared, err := resolve()
	if err != nil {
		return nil, err
	}
	switch {
	case prev != "" && !update && !declared:
		f.Go = prev
	default:
		f.Go = name
	}
	switch {
	case prev == "":
		return &Change{Kind: "added", Key: "go toolchain", To: f.Go}, nil
	case prev != f.Go:
		return &Change{Kind: "updated", Key: "go toolchain", From: prev, To: f.Go}, nil
	}
	return nil, nil
}
