// Package yamlpos decodes YAML strictly into Go structs, keeping the
// line and column of every value: the one YAML reader of the spec
// (pkg/spec) and of structure-test files (pkg/imagetest), and the only
// importer of gopkg.in/yaml.v3.
//
// Every key a struct does not declare is an error, with a suggestion
// when it looks like a typo of one that it does; every value of the wrong
// kind is an error; errors carry file:line:col and the field's path
// (layers[1].contents[0].mode). One call reports every problem it finds.
//
// # Limits
//
// Hostile input is refused in bounded time and memory:
//
//   - ReadFile refuses a file larger than its limit (the callers' limits
//     are MaxSpecSize and MaxTestFileSize), before parsing, and refuses
//     what is not a regular file (a FIFO, a device, a socket), so that
//     neither a 1 GB line nor /dev/zero is read without end.
//   - Aliases (*name) are followed when values are decoded, and each use
//     of an alias costs its expanded size anew. The budget counts bytes,
//     not nodes: each scalar costs its length plus NodeCost, each
//     mapping and list NodeCost. A document may expand to at most
//     AliasFactor times its own size (its nodes counted once, without
//     following aliases) plus AliasSlack; past that the decoder stops
//     with "the aliases (*name) in this file expand to too much". A
//     document without aliases never reaches the limit.
//   - A quoted scalar of LongScalar bytes or more, written on one line (a
//     big inline file), is cut out of the document before yaml.v3 reads
//     it, and unquoted once into its node: yaml.v3 holds such a value four
//     to five times over while scanning it. Where the document then reads
//     otherwise than as written (the line was inside a block scalar, say),
//     it is read whole by yaml.v3; FuzzLongScalar compares the two.
package yamlpos
