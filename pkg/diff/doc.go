// Package diff explains every difference between two images or indexes,
// from the top down: index fields, then per platform the manifest fields,
// the config fields one by one, the layers (added, removed, reordered,
// changed, or changed in compression only), and the files of the
// flattened filesystems (added, removed, or changed in type, content,
// mode, owner, mtime, xattrs or link target). For layers that differ at
// the same position it also lists their own entries' differences, so a
// change is named both where it lands in the final tree and in the layer
// that made it. Images with different layer counts still compare by
// content through the flattened view.
//
// Each layer is read once per distinct diff ID, however many times the
// two images hold it.
//
// The JSON form of Report is stable: fields are only ever added.
//
//	{
//	  "identical": bool,
//	  "a": {"ref", "digest", "mediaType"}, "b": {…},
//	  "index": [{"field", "a", "b"}],            // index manifest fields
//	  "platforms": [{
//	    "platform": "linux/amd64",
//	    "a": "sha256:…", "b": "sha256:…",        // manifest digests ("" when absent)
//	    "manifest": [{"field", "a", "b"}],
//	    "config":   [{"field", "a", "b"}],
//	    "layers":   [{"index", "change", "a": {"digest","diffID","mediaType","size"}, "b": {…}}],
//	    "files":    [{"path", "change", "fields": [...], "a": File, "b": File}],
//	    "layerFiles": [{"index", "files": [... as files]}]
//	  }]
//	}
//
// Layer changes are added, removed, reordered, changed and
// compression-only (same diff ID, different blob). File changes are
// added, removed and changed; fields name what changed: type, content,
// mode, owner, mtime, xattrs, link.
package diff
