package imageref

import (
	"encoding/json"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Summary is what an image is made of, short of its files: its digest,
// its manifest and config as stored, and each layer's descriptor. Its JSON
// is a platform's in `repro inspect --json`.
type Summary struct {
	Digest   string          `json:"digest"`
	Manifest json.RawMessage `json:"manifest"`
	Config   json.RawMessage `json:"config"`
	Layers   []LayerSummary  `json:"layers"`
}

// LayerSummary is one layer of a Summary.
type LayerSummary struct {
	Digest    string `json:"digest"`
	DiffID    string `json:"diffID"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
}

// Summarize reads img's manifest and config (not its layers) into a
// Summary; Layers is empty, not nil, for an image of none.
func Summarize(img v1.Image) (*Summary, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	m, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	c, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	s := &Summary{Digest: d.String(), Manifest: m, Config: c, Layers: []LayerSummary{}}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		ld, err := l.Digest()
		if err != nil {
			return nil, err
		}
		id, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		size, _ := l.Size()
		mt, _ := l.MediaType()
		s.Layers = append(s.Layers, LayerSummary{Digest: ld.String(), DiffID: id.String(), Size: size, MediaType: string(mt)})
	}
	return s, nil
}
