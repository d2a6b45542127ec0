package yamlpos

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// LongScalar is the length from which a scalar written on one line is
// taken out of the document before yaml.v3 parses it. yaml.v3 holds such
// a value several times over while it scans it (a 200 MB inline content
// peaked at 1.1 GB); cut out, it is unquoted once, straight from the file's
// bytes, into the node's value.
const LongScalar = 64 << 10

// longScalar is a scalar cut out of the document: its place, and where
// its text is in the original bytes.
type longScalar struct {
	line, col  int // of its first character (the quote, if quoted)
	start, end int // in data: the scalar as written, quotes included
	quote      byte
	stand      string // the placeholder's value
}

// keyPrefix matches what may come before a scalar value on its line: an
// indent, list dashes, and a plain key with its colon.
var keyPrefix = regexp.MustCompile(`^ *(?:- +)*(?:[A-Za-z0-9_][A-Za-z0-9_.\-/]*: +)?`)

// cutLongScalars returns data with each long one-line scalar replaced by
// a short double-quoted placeholder, and the scalars it cut. Lines it
// cannot read with certainty are left alone; Parse checks afterwards that
// every placeholder came back as a scalar at its place.
func cutLongScalars(data []byte) ([]byte, []longScalar) {
	var out bytes.Buffer
	var cut []longScalar
	for line, off := 1, 0; off < len(data); line++ {
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += off
		}
		text := data[off:end]
		if len(text) >= LongScalar {
			if s, ok := scanLongScalar(text); ok {
				if cut == nil {
					out.Grow(len(data) / 16)
					out.Write(data[:off])
				}
				s.line, s.start, s.end = line, off+s.start, off+s.end
				s.stand = fmt.Sprintf("yamlpos long scalar %d", len(cut))
				out.Write(data[off:s.start])
				out.WriteString(strconv.Quote(s.stand))
				out.Write(data[s.end:end])
				cut = append(cut, s)
			} else if cut != nil {
				out.Write(text)
			}
		} else if cut != nil {
			out.Write(text)
		}
		if end < len(data) && cut != nil {
			out.WriteByte('\n')
		}
		off = end + 1
	}
	if cut == nil {
		return data, nil
	}
	return out.Bytes(), cut
}

// scanLongScalar finds a quoted scalar that is the whole value of line,
// after its key: it ends the line, but for spaces and a comment.
func scanLongScalar(text []byte) (longScalar, bool) {
	head := text[:min(len(text), 4096)]
	p := len(keyPrefix.Find(head))
	if p >= len(text) || (text[p] != '"' && text[p] != '\'') {
		return longScalar{}, false
	}
	q := text[p]
	i := p + 1
	for i < len(text) {
		c := text[i]
		if q == '"' && c == '\\' {
			i += 2
			continue
		}
		if c == q {
			if q == '\'' && i+1 < len(text) && text[i+1] == '\'' {
				i += 2
				continue
			}
			break
		}
		i++
	}
	if i >= len(text) || !printable(text[p+1:i]) {
		return longScalar{}, false
	}
	rest := bytes.TrimLeft(text[i+1:], " \t")
	if len(rest) > 0 && rest[0] != '#' {
		return longScalar{}, false
	}
	return longScalar{col: utf8.RuneCount(text[:p]) + 1, start: p, end: i + 1, quote: q}, true
}

// restoreLongScalars puts the cut scalars' values into the nodes that
// stand for them, and reports whether each was found where it was cut.
func restoreLongScalars(root *yaml.Node, data []byte, cut []longScalar) bool {
	at := map[[2]int]*longScalar{}
	for i := range cut {
		at[[2]int{cut[i].line, cut[i].col}] = &cut[i]
	}
	found := 0
	ok := true
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && strings.HasPrefix(n.Value, "yamlpos long scalar ") {
			s := at[[2]int{n.Line, n.Column}]
			if s == nil || n.Value != s.stand || n.Style != yaml.DoubleQuotedStyle {
				ok = false
				return
			}
			v, err := unquote(data[s.start:s.end], s.quote)
			if err != nil {
				ok = false
				return
			}
			n.Value = v
			if s.quote == '\'' {
				n.Style = yaml.SingleQuotedStyle
			}
			found++
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(root)
	return ok && found == len(cut)
}

// unquote is the value of a one-line quoted YAML scalar.
func unquote(b []byte, q byte) (string, error) {
	b = b[1 : len(b)-1]
	if q == '\'' {
		if bytes.IndexByte(b, '\'') < 0 {
			return string(b), nil
		}
		return string(bytes.ReplaceAll(b, []byte("''"), []byte("'"))), nil
	}
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b), nil
	}
	var s strings.Builder
	s.Grow(len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			s.WriteByte(c)
			continue
		}
		i++
		if i >= len(b) {
			return "", fmt.Errorf("a \\ ends the scalar")
		}
		switch b[i] {
		case '0':
			s.WriteByte(0)
		case 'a':
			s.WriteByte('\a')
		case 'b':
			s.WriteByte('\b')
		case 't', '\t':
			s.WriteByte('\t')
		case 'n':
			s.WriteByte('\n')
		case 'v':
			s.WriteByte('\v')
		case 'f':
			s.WriteByte('\f')
		case 'r':
			s.WriteByte('\r')
		case 'e':
			s.WriteByte(0x1b)
		case ' ', '"', '\'', '\\':
			s.WriteByte(b[i])
		case 'N':
			s.WriteString("\u0085")
		case '_':
			s.WriteString("\u00a0")
		case 'L':
			s.WriteString("\u2028")
		case 'P':
			s.WriteString("\u2029")
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[b[i]]
			if i+1+n > len(b) {
				return "", fmt.Errorf("a short \\%c escape", b[i])
			}
			r, err := strconv.ParseUint(string(b[i+1:i+1+n]), 16, 32)
			if err != nil || !utf8.ValidRune(rune(r)) {
				return "", fmt.Errorf("a bad \\%c escape", b[i])
			}
			s.WriteRune(rune(r))
			i += n
		default:
			return "", fmt.Errorf("an unknown escape \\%c", b[i])
		}
	}
	return s.String(), nil
}

// printable reports whether b is valid UTF-8 without control characters
// (but tab), as yaml.v3 requires of a scalar; what is not is left to
// yaml.v3, to say so.
func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(b)
}
