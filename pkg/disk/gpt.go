package disk

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const (
	sector    = 512
	alignment = 1 << 20 // the partition starts 1 MiB in and ends 1 MiB before the end
	// MinSize is the smallest disk: ext4 with a journal needs a few MiB.
	MinSize = 16 << 20
)

// linuxData is the GPT type "Linux filesystem data".
const linuxData = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"

// rootTypes are the Discoverable Partitions Specification's root partition
// types, by GOARCH (as OCI names architectures); sfdisk --list-types shows
// the same table.
var rootTypes = map[string]string{
	"386":      "44479540-F297-41B2-9AF7-D131D5F0458A",
	"amd64":    "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
	"arm":      "69DAD710-2CE4-4E3C-B16C-21A1D49ABED3",
	"arm64":    "B921B045-1DF0-41C3-AF44-4C6F280D3FAE",
	"loong64":  "77055800-792C-4F94-B39A-98C91B762BB6",
	"mipsle":   "37C58C8A-D913-4156-A25F-48B1B64E07F0",
	"mips64le": "700BDA43-7A34-4507-B179-EEB93D7A7CA3",
	"ppc64":    "912ADE1D-A839-4913-8964-A10EEE08FBD2",
	"ppc64le":  "C31C45E6-3F39-412E-80FB-4809C4980599",
	"riscv64":  "72EC70A6-CF74-40E6-BD49-4BDA08E8F224",
	"s390x":    "5EEAD9A9-FE09-4A1E-A1D7-520D00531306",
}

// rootType is the partition type for arch, and whether it is a root type.
func rootType(arch string) (string, bool) {
	if t, ok := rootTypes[arch]; ok {
		return t, true
	}
	return linuxData, false
}

// derivedUUID is a UUID (version 4 and variant bits set, as systemd-repart
// does) derived from the image digest and a purpose, so that each identifier
// of a disk is fixed by the image and differs from the others.
func derivedUUID(digest, purpose string) string {
	sum := sha256.Sum256([]byte("repro-disk/1\x00" + purpose + "\x00" + digest))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// partition is where the filesystem lives on the disk.
type partition struct {
	start, size int64 // bytes
}

func layoutFor(diskSize int64) partition {
	return partition{start: alignment, size: diskSize - 2*alignment}
}

// gptScript is sfdisk's input for the disk: every field that sfdisk would
// otherwise choose (label id, partition uuid, first LBA) is given.
func gptScript(ids *identifiers, part partition, typ string, esp *partition) string {
	var b strings.Builder
	first := part.start
	if esp != nil {
		first = esp.start
	}
	fmt.Fprintf(&b, "label: gpt\nlabel-id: %s\nunit: sectors\nsector-size: %d\nfirst-lba: %d\n\n", strings.ToUpper(ids.disk), sector, first/sector)
	if esp != nil {
		fmt.Fprintf(&b, "start=%d, size=%d, type=%s, uuid=%s, name=\"esp\"\n", esp.start/sector, esp.size/sector, espType, strings.ToUpper(ids.esp))
	}
	fmt.Fprintf(&b, "start=%d, size=%d, type=%s, uuid=%s, name=\"root\"\n", part.start/sector, part.size/sector, typ, strings.ToUpper(ids.partition))
	return b.String()
}

// partitionDisk writes a GPT onto raw, a file of the disk's size.
func partitionDisk(ctx context.Context, t *Tool, work string, env []string, raw string, script string) error {
	in := filepath.Join(work, "sfdisk.in")
	if err := os.WriteFile(in, []byte(script), 0o600); err != nil {
		return err
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = runStdin(ctx, t, work, env, f, "--no-reread", "--no-tell-kernel", "--quiet", "--lock=no", raw)
	return err
}

// identifiers are the disk's fixed identities, all derived from the digest.
type identifiers struct {
	disk      string // GPT disk GUID
	partition string // GPT partition GUID
	fs        string // filesystem UUID
	hashSeed  string // ext4 directory hash seed
	vmdkCID   uint32
	esp       string  // GPT partition GUID of the EFI system partition
	fatSerial [4]byte // its FAT volume serial number
}

func newIdentifiers(digest string) *identifiers {
	cid := sha256.Sum256([]byte("repro-disk/1\x00vmdk-cid\x00" + digest))
	serial := sha256.Sum256([]byte("repro-disk/1\x00fat-serial\x00" + digest))
	return &identifiers{
		disk:      derivedUUID(digest, "gpt-disk"),
		partition: derivedUUID(digest, "gpt-partition"),
		fs:        derivedUUID(digest, "filesystem"),
		hashSeed:  derivedUUID(digest, "ext4-hash-seed"),
		esp:       derivedUUID(digest, "gpt-esp"),
		fatSerial: [4]byte(serial[:4]),
		// Not ffffffff, which means "no parent" in parentCID.
		vmdkCID: (uint32(cid[0])<<24 | uint32(cid[1])<<16 | uint32(cid[2])<<8 | uint32(cid[3])) & 0x7fffffff,
	}
}
