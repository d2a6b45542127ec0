package disk

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The Packer hand-off: a template whose qemu source boots the disk as it
// is (disk_image, checksum pinned) and a build block where provisioners and
// post-processors go. It is written for HCL2 as Debian's packer 1.6.6 reads
// it (no required_plugins, no init, no data sources); plugins.pkr.hcl adds
// the required_plugins block that current Packer, which ships the qemu
// builder as a plugin, wants.

const (
	packerTemplate = "repro-disk.pkr.hcl"
	packerVars     = "repro-disk.pkrvars.hcl"
	packerPlugins  = "plugins.pkr.hcl"
)

// PackerFiles are the files WritePacker writes, by name.
var PackerFiles = []string{packerTemplate, packerVars, packerPlugins}

// hclString quotes s as an HCL string: JSON-like escapes, and ${ and %{
// doubled so that a path is never read as a template.
func hclString(s string) string {
	q := strconv.Quote(s)
	q = strings.ReplaceAll(q, "${", "$${")
	return strings.ReplaceAll(q, "%{", "%%{")
}

// WritePacker writes the Packer template for the disk that rec describes,
// at diskFile, into dir (created if missing). Each file is written to a
// temporary name and renamed.
func WritePacker(dir, diskFile string, rec *Record) error {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	absDisk, err := filepath.Abs(diskFile)
	if err != nil {
		return err
	}
	// The disk, relative to the template's directory when it can be, so
	// that the directory and the disk can move together.
	url := hclString(absDisk)
	if rel, err := filepath.Rel(absDir, absDisk); err == nil {
		url = `"${path.root}/` + hclString(filepath.ToSlash(rel))[1:]
	}
	if err := os.MkdirAll(absDir, 0o755); err != nil {
		return err
	}
	outFormat := string(rec.Disk.Format)
	if rec.Disk.Format == VMDK {
		outFormat = "qcow2" // the qemu builder writes raw or qcow2
	}
	files := map[string]string{
		packerTemplate: templateHCL(rec, url, outFormat),
		packerVars:     varsHCL(rec),
		packerPlugins:  pluginsHCL,
	}
	for _, name := range PackerFiles {
		if err := writeAtomic(filepath.Join(absDir, name), []byte(files[name])); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// templateHCL is the template; url is the iso_url expression, quoted.
func templateHCL(rec *Record, url, outFormat string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by repro disk. It takes the disk that repro made and hands it to
# Packer for what only Packer does: cloud import, further provisioning and
# post-processors.
#
#   image:  %s (%s)
#   disk:   %s, %s, sha256:%s
#
# Two tiers, plainly:
#   1. The disk is reproducible bit for bit: repro disk makes the same bytes
#      from the same image, and iso_checksum below pins them.
#   2. Whatever Packer changes inside the running VM (provisioners) and what
#      it writes about the build (the manifest post-processor records a build
#      time) is not reproducible. Prove tier 1 with repro; treat tier 2 as a
#      build step like any other.
#
# Debian's packer 1.6.6 has the qemu builder built in; give it this file and
# the variables file:
#   packer validate -var-file=%[6]s %[7]s
#   packer build -var-file=%[6]s %[7]s
# Current Packer ships the qemu builder as a plugin; plugins.pkr.hcl declares
# it (packer 1.6.6 does not know required_plugins, so give it this file alone,
# never the directory):
#   packer init %[8]s && packer build -var-file=%[6]s .
#
# The disk holds the image's root filesystem on a GPT partition; it has no
# boot loader or kernel of its own unless the image has. To boot a kernel
# directly, pass qemu -kernel/-initrd/-append through the qemuargs variable.
#
# Provisioners (shell, file, ansible, ...) go in the build block below; they
# need a communicator: set communicator = "ssh" and the ssh_* settings in the
# source, for an image that runs sshd.
# Post-processors go in the build block too, after the provisioners, for
# example (with the amazon and googlecompute plugins):
#   post-processor "amazon-import" { s3_bucket_name = "…" region = "…" }
#   post-processor "googlecompute-import" { bucket = "…" project_id = "…" image_name = "…" }

`, rec.Image, rec.Platform, rec.Disk.File, rec.Disk.Format, rec.Disk.SHA256, packerVars, packerTemplate, packerPlugins)
	b.WriteString(`variable "accelerator" {
  type        = string
  default     = "tcg"
  description = "qemu accelerator: tcg works everywhere; kvm where /dev/kvm is usable"
}

variable "memory" {
  type        = number
  default     = 512
  description = "MiB of guest memory"
}

variable "cpus" {
  type    = number
  default = 1
}

variable "headless" {
  type    = bool
  default = true
}

variable "qemuargs" {
  type        = list(list(string))
  default     = []
  description = "extra qemu arguments, e.g. [[\"-kernel\", \"vmlinuz\"], [\"-append\", \"root=/dev/vda1 console=ttyS0\"]]"
}

variable "boot_wait" {
  type    = string
  default = "1s"
}

variable "shutdown_timeout" {
  type    = string
  default = "5m"
}

variable "output_directory" {
  type    = string
  default = "output-repro-disk"
}

variable "vm_name" {
  type    = string
  default = "repro-disk"
}

`)
	fmt.Fprintf(&b, `source "qemu" "repro" {
  disk_image       = true
  iso_url          = %s
  iso_checksum     = "sha256:%s"
  use_backing_file = false
  skip_resize_disk = true
  disk_interface   = "virtio"
  format           = %q
  accelerator      = var.accelerator
  memory           = var.memory
  cpus             = var.cpus
  headless         = var.headless
  disable_vnc      = true
  qemuargs         = var.qemuargs
  boot_wait        = var.boot_wait
  shutdown_timeout = var.shutdown_timeout
  communicator     = "none"
  output_directory = var.output_directory
  vm_name          = var.vm_name
}

build {
  sources = ["source.qemu.repro"]

  # Provisioners go here (they need a communicator; see the top of this
  # file). Nothing a provisioner does is covered by the disk's checksum.

  # Post-processors go here, after the provisioners: amazon-import,
  # googlecompute-import, checksum, compress, manifest.
}
`, url, rec.Disk.SHA256, outFormat)
	return b.String()
}

func varsHCL(rec *Record) string {
	return fmt.Sprintf(`# Values for %s; every variable is declared there, with
# these defaults. Set accelerator = "kvm" where /dev/kvm is usable.
accelerator      = "tcg"
memory           = 512
cpus             = 1
headless         = true
boot_wait        = "1s"
shutdown_timeout = "5m"
output_directory = "output-repro-disk"
vm_name          = %s
`, packerTemplate, hclString(strings.TrimSuffix(rec.Disk.File, filepath.Ext(rec.Disk.File))))
}

// pluginsHCL declares the qemu plugin for Packer 1.7 and later. Packer
// 1.6.6 rejects required_plugins, and it cannot be checked offline.
const pluginsHCL = `# For Packer 1.7 and later, which ship the qemu builder as a plugin:
#   packer init plugins.pkr.hcl
# Packer 1.6.6 (Debian 12) has the builder built in and rejects this block:
# give it repro-disk.pkr.hcl alone. repro cannot validate this file offline,
# as packer init downloads the plugin.
packer {
  required_plugins {
    qemu = {
      version = ">= 1.1.0"
      source  = "github.com/hashicorp/qemu"
    }
  }
}
`
