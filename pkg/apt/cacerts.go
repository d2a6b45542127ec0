package apt

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
)

// subjectHash is OpenSSL's X509_NAME_hash of the subject of the one
// certificate in a PEM file, as `openssl rehash` names its links
// (%08x), and the certificate's SHA-256 fingerprint. A file without
// exactly one certificate gives "" (rehash skips it).
func subjectHash(data []byte) (hash, fingerprint string, err error) {
	var der []byte
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" || b.Type == "TRUSTED CERTIFICATE" {
			if der != nil {
				return "", "", nil
			}
			der = b.Bytes
		}
	}
	if der == nil {
		return "", "", nil
	}
	subject, err := rawSubject(der)
	if err != nil {
		return "", "", err
	}
	canon, err := canonicalName(subject)
	if err != nil {
		return "", "", err
	}
	sum := sha1.Sum(canon)
	fp := sha256.Sum256(der)
	return fmt.Sprintf("%08x", binary.LittleEndian.Uint32(sum[:4])), hex.EncodeToString(fp[:]), nil
}

// rawSubject returns the DER of a certificate's subject Name.
func rawSubject(der []byte) ([]byte, error) {
	var cert struct {
		TBS asn1.RawValue
	}
	if _, err := asn1.Unmarshal(der, &cert); err != nil {
		return nil, fmt.Errorf("reading the certificate: %w", err)
	}
	// TBSCertificate: [0] version (optional), serial, signature alg,
	// issuer, validity, subject, ...
	var fields []asn1.RawValue
	rest := cert.TBS.Bytes
	for len(rest) > 0 && len(fields) < 7 {
		var v asn1.RawValue
		var err error
		rest, err = asn1.Unmarshal(rest, &v)
		if err != nil {
			return nil, fmt.Errorf("reading the certificate: %w", err)
		}
		fields = append(fields, v)
	}
	i := 0
	if len(fields) > 0 && fields[0].Class == asn1.ClassContextSpecific && fields[0].Tag == 0 {
		i = 1
	}
	if len(fields) < i+5 {
		return nil, errors.New("reading the certificate: too few fields")
	}
	return fields[i+4].FullBytes, nil
}

// canonicalName is OpenSSL's canonical encoding of a Name (x509_name_canon):
// each RDN's SET encoded with its string values converted to UTF-8, with
// leading and trailing white space removed, inner runs of white space made
// one space and ASCII letters lower-cased, as UTF8String; the SETs
// concatenated, without the outer SEQUENCE.
func canonicalName(name []byte) ([]byte, error) {
	var rdns []asn1.RawValue
	var seq asn1.RawValue
	if _, err := asn1.Unmarshal(name, &seq); err != nil {
		return nil, err
	}
	rest := seq.Bytes
	for len(rest) > 0 {
		var set asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &set); err != nil {
			return nil, err
		}
		rdns = append(rdns, set)
	}
	var out bytes.Buffer
	for _, set := range rdns {
		var elems [][]byte
		r := set.Bytes
		for len(r) > 0 {
			var atv struct {
				Type  asn1.ObjectIdentifier
				Value asn1.RawValue
			}
			var err error
			if r, err = asn1.Unmarshal(r, &atv); err != nil {
				return nil, err
			}
			val := atv.Value.FullBytes
			if s, ok := stringValue(atv.Value); ok {
				enc, err := asn1.MarshalWithParams(canonString(s), "utf8")
				if err != nil {
					return nil, err
				}
				val = enc
			}
			oid, err := asn1.Marshal(atv.Type)
			if err != nil {
				return nil, err
			}
			body := append(oid, val...)
			elems = append(elems, append(derHeader(0x30, len(body)), body...))
		}
		// DER sorts the elements of a SET OF.
		sort.Slice(elems, func(i, j int) bool { return bytes.Compare(elems[i], elems[j]) < 0 })
		body := bytes.Join(elems, nil)
		out.Write(derHeader(0x31, len(body)))
		out.Write(body)
	}
	return out.Bytes(), nil
}

func derHeader(tag byte, n int) []byte {
	if n < 0x80 {
		return []byte{tag, byte(n)}
	}
	var l []byte
	for v := n; v > 0; v >>= 8 {
		l = append([]byte{byte(v)}, l...)
	}
	return append([]byte{tag, 0x80 | byte(len(l))}, l...)
}

// stringValue converts an ASN.1 string of the types OpenSSL canonicalises
// to UTF-8 text.
func stringValue(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String, 26 /* VisibleString */ :
		return string(v.Bytes), true
	case asn1.TagT61String: // read as Latin-1, as OpenSSL does
		var b strings.Builder
		for _, c := range v.Bytes {
			b.WriteRune(rune(c))
		}
		return b.String(), true
	case asn1.TagBMPString:
		if len(v.Bytes)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(v.Bytes[2*i:])
		}
		return string(utf16.Decode(u)), true
	case 28: // UniversalString
		if len(v.Bytes)%4 != 0 {
			return "", false
		}
		var b strings.Builder
		for i := 0; i < len(v.Bytes); i += 4 {
			b.WriteRune(rune(binary.BigEndian.Uint32(v.Bytes[i:])))
		}
		return b.String(), true
	}
	return "", false
}

// canonString is asn1_string_canon: trim white space, make inner runs one
// space, lower-case ASCII.
func canonString(s string) string {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' }
	b := []byte(s)
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	var out []byte
	for i := 0; i < len(b); i++ {
		c := b[i]
		if isSpace(c) {
			for i+1 < len(b) && isSpace(b[i+1]) {
				i++
			}
			out = append(out, ' ')
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		out = append(out, c)
	}
	return string(out)
}
