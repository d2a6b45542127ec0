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
// post-processors go, written so that the directory validates as it is
// (packer validate DIR) on Debian's packer 1.6.6, which has the qemu
// builder built in and rejects required_plugins, and on Packer 1.9, which
// bundles the qemu plugin. For Packer 1.10 and later, which bundles none,
// plugins.pkr.hcl.example holds the required_plugins block to copy in.
// For a bootable disk, the build boots it with OVMF and a shell-local
// step (repro-boot-check.sh) checks it from the host. cloud/aws and
// cloud/gce are templates of their own that add the import post-processor.

const (
	packerTemplate = "repro-disk.pkr.hcl"
	packerVars     = "repro-disk.pkrvars.hcl"
	packerPlugins  = "plugins.pkr.hcl.example"
	packerCheck    = "repro-boot-check.sh"
	packerAWS      = "cloud/aws/aws-import.pkr.hcl"
	packerGCE      = "cloud/gce/gce-import.pkr.hcl"
)

// PackerFiles are the files WritePacker writes for a disk, by name.
func PackerFiles(boot bool) []string {
	if boot {
		return []string{packerAWS, packerGCE, packerPlugins, packerCheck, packerTemplate, packerVars}
	}
	return []string{packerPlugins, packerTemplate, packerVars}
}

// PackerFormatOK says whether Packer's qemu builder can take a disk of
// this format (it copies the disk with qemu-img, which reads every format
// but gce's tar.gz).
func PackerFormatOK(f Format) bool { return f != GCE }

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
	if !PackerFormatOK(rec.Disk.Format) {
		return fmt.Errorf("packer's qemu builder cannot boot a %s disk", rec.Disk.Format)
	}
	// The disk, relative to the template's directory when it can be, so
	// that the directory and the disk can move together.
	url := func(sub string) string {
		if rel, err := filepath.Rel(filepath.Join(absDir, sub), absDisk); err == nil {
			return `"${path.root}/` + hclString(filepath.ToSlash(rel))[1:]
		}
		return hclString(absDisk)
	}
	outFormat := string(rec.Disk.Format)
	if rec.Disk.Format != Raw && rec.Disk.Format != QCOW2 {
		outFormat = "qcow2" // the qemu builder writes raw or qcow2
	}
	boot := rec.Boot != nil
	files := map[string]string{
		packerTemplate: templateHCL(rec, url("."), outFormat, ""),
		packerVars:     varsHCL(rec),
		packerPlugins:  pluginsHCL,
	}
	if boot {
		files[packerCheck] = bootCheckScript
		files[packerAWS] = templateHCL(rec, url("cloud/aws"), "raw", "aws")
		files[packerGCE] = templateHCL(rec, url("cloud/gce"), "raw", "gce")
	}
	for _, name := range PackerFiles(boot) {
		p := filepath.Join(absDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if name == packerCheck {
			mode = 0o755
		}
		if err := writeAtomic(p, []byte(files[name]), mode); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(name string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
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

// templateHCL is a template; url is the iso_url expression, quoted;
// cloud is "", "aws" or "gce".
func templateHCL(rec *Record, url, outFormat, cloud string) string {
	boot := rec.Boot != nil
	var b strings.Builder
	what := "It takes the disk that repro made and hands it to\n# Packer for what only Packer does: further provisioning, post-processors."
	switch cloud {
	case "aws":
		what = "It boots the disk that repro made, checks it, and imports it into\n# AWS as an AMI (the amazon-import post-processor: the raw disk goes to S3, then\n# EC2 import-image). Set s3_bucket_name and region; AWS credentials come from\n# the usual places (environment, ~/.aws). repro has never run this against AWS."
	case "gce":
		what = "It boots the disk that repro made, checks it, and imports it into\n# Google Compute Engine (the googlecompute-import post-processor: the raw disk\n# as disk.raw in a tar.gz, uploaded to a bucket, made an image). Set\n# project_id and bucket; credentials come from account_file or the\n# application default. repro has never run this against GCE."
	}
	fmt.Fprintf(&b, `# Written by repro disk. %s
#
#   image:  %s (%s)
#   disk:   %s, %s, sha256:%s
#
# Two tiers, plainly:
#   1. The disk is reproducible bit for bit: repro disk makes the same bytes
#      from the same image, and iso_checksum below pins them.
#   2. Whatever Packer changes inside the running VM (provisioners, the boot
#      itself: a journal, a machine id), the disk Packer writes out, and what
#      it records about the build (the manifest post-processor writes a build
#      time) is not reproducible. Prove tier 1 with repro; treat tier 2 as a
#      build step like any other.
#
# This directory validates and builds as it is with Debian's packer 1.6.6 and
# with Packer 1.9 (both have the qemu builder built in):
#   packer validate .        packer build .
# Packer 1.10 and later ship no plugins: copy plugins.pkr.hcl.example into
# plugins.pkr.hcl and run packer init . first (packer 1.6.6 rejects that file).
`, what, rec.Image, rec.Platform, rec.Disk.File, rec.Disk.Format, rec.Disk.SHA256)
	if boot {
		b.WriteString(`#
# The disk boots by UEFI (repro disk --boot): the build boots it with OVMF
# (the ovmf package: /usr/share/ovmf/OVMF.fd), its serial console going to a
# file; the shell-local step (repro-boot-check.sh, on the host: bash, sed, grep)
# waits for boot_expect on that console, GETs / through a forwarded port when
# http_guest_port is set, then presses Ctrl-Alt-Del through the QEMU monitor:
# systemd reboots, and QEMU (-no-reboot) stops. No SSH is needed.
`)
	} else {
		b.WriteString(`#
# The disk holds the image's root filesystem on a GPT partition and has no
# boot loader of its own (repro disk --boot makes one that has). To boot a
# kernel directly, pass qemu -kernel/-initrd/-append through qemuargs.
`)
	}
	b.WriteString(`#
# Provisioners (shell, file, ansible, ...) that run inside the VM need a
# communicator: set communicator = "ssh" and the ssh_* settings in the
# source, for an image that runs sshd.

variable "accelerator" {
  type        = string
  default     = "tcg"
  description = "qemu accelerator: tcg works everywhere; kvm where /dev/kvm is usable"
}

variable "memory" {
  type        = number
  default     = 1024
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
  default = "10m"
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
	if boot {
		b.WriteString(`
variable "ovmf" {
  type        = string
  default     = "/usr/share/ovmf/OVMF.fd"
  description = "the UEFI firmware, for qemu -bios (Debian's ovmf package)"
}

variable "serial_log" {
  type        = string
  default     = ""
  description = "where the guest's serial console goes (default: repro-boot-serial.log beside this file)"
}

variable "boot_expect" {
  type        = string
  default     = "Reached target multi-user.target"
  description = "what the serial console must show for the boot to pass"
}

variable "boot_timeout" {
  type        = number
  default     = 300
  description = "seconds to wait for boot_expect (a TCG boot takes about a minute)"
}

variable "http_guest_port" {
  type        = number
  default     = 0
  description = "a guest TCP port whose GET / must answer 200 (0: no check)"
}

variable "http_host_port" {
  type        = number
  default     = 48080
  description = "the 127.0.0.1 port forwarded to http_guest_port"
}

variable "monitor_port" {
  type        = number
  default     = 45454
  description = "the 127.0.0.1 port of the QEMU monitor that the check stops the VM through"
}

locals {
  serial_log = var.serial_log != "" ? var.serial_log : "${path.root}/repro-boot-serial.log"
  # The builder's own network (-netdev user,id=user.0, and its net_device
  # on it) replaced, not joined: a second user-mode NIC would answer DHCP
  # with the same address, and the forwarded port's replies could leave by
  # the other one.
  netdev = var.http_guest_port > 0 ? "user,id=user.0,hostfwd=tcp:127.0.0.1:${var.http_host_port}-:${var.http_guest_port}" : "user,id=user.0"
  qemuargs = concat([
    ["-bios", var.ovmf],
    ["-serial", "file:${local.serial_log}"],
    ["-monitor", "tcp:127.0.0.1:${var.monitor_port},server,nowait"],
    ["-netdev", local.netdev],
    ["-no-reboot", ""],
  ], var.qemuargs)
}
`)
	}
	switch cloud {
	case "aws":
		b.WriteString(`
variable "s3_bucket_name" {
  type        = string
  default     = "my-import-bucket"
  description = "the S3 bucket the disk is uploaded to"
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "ami_name" {
  type    = string
  default = "repro-disk"
}
`)
	case "gce":
		b.WriteString(`
variable "project_id" {
  type    = string
  default = "my-project"
}

variable "bucket" {
  type        = string
  default     = "my-import-bucket"
  description = "the Cloud Storage bucket the disk.raw tar.gz is uploaded to"
}

variable "image_name" {
  type    = string
  default = "repro-disk"
}

variable "account_file" {
  type        = string
  default     = ""
  description = "a service account key file; empty: the application default credentials"
}
`)
	}
	qemuargs := "var.qemuargs"
	extra := ""
	if boot {
		qemuargs = "local.qemuargs"
		extra = "  machine_type     = \"q35\"\n"
	}
	fmt.Fprintf(&b, `
source "qemu" "repro" {
  disk_image       = true
  iso_url          = %s
  iso_checksum     = "sha256:%s"
  use_backing_file = false
  skip_resize_disk = true
  disk_interface   = "virtio"
  format           = %q
%s  accelerator      = var.accelerator
  memory           = var.memory
  cpus             = var.cpus
  headless         = var.headless
  disable_vnc      = true
  qemuargs         = %s
  boot_wait        = var.boot_wait
  shutdown_timeout = var.shutdown_timeout
  communicator     = "none"
  output_directory = var.output_directory
  vm_name          = var.vm_name
}

build {
  sources = ["source.qemu.repro"]
`, url, rec.Disk.SHA256, outFormat, extra, qemuargs)
	if boot {
		check := `"${path.root}/` + packerCheck + `"`
		if cloud != "" {
			check = `"${path.root}/../../` + packerCheck + `"`
		}
		fmt.Fprintf(&b, `
  # The boot check, on the host (see the top of this file).
  provisioner "shell-local" {
    script          = %s
    execute_command = ["/bin/bash", "-c", "{{.Vars}} /bin/bash {{.Script}}"]
    environment_vars = [
      "REPRO_SERIAL=${local.serial_log}",
      "REPRO_EXPECT=${var.boot_expect}",
      "REPRO_TIMEOUT=${var.boot_timeout}",
      "REPRO_HTTP_PORT=${var.http_guest_port > 0 ? var.http_host_port : 0}",
      "REPRO_MONITOR_PORT=${var.monitor_port}",
    ]
  }
`, check)
	} else {
		b.WriteString(`
  # Provisioners go here (they need a communicator; see the top of this
  # file). Nothing a provisioner does is covered by the disk's checksum.
`)
	}
	switch cloud {
	case "aws":
		b.WriteString(`
  # The raw disk Packer wrote goes to S3 and becomes an AMI. Nothing here
  # has been run against AWS by repro.
  post-processor "amazon-import" {
    s3_bucket_name = var.s3_bucket_name
    region         = var.region
    format         = "raw"
    ami_name       = var.ami_name
    license_type   = "BYOL"
    tags = {
      "repro:image" = "` + rec.Image + `"
      "repro:disk"  = "sha256:` + rec.Disk.SHA256 + `"
    }
  }
}
`)
	case "gce":
		b.WriteString(`
  # The raw disk Packer wrote goes, as disk.raw in a tar.gz, to a bucket and
  # becomes an image. Nothing here has been run against GCE by repro.
  post-processor "googlecompute-import" {
    project_id              = var.project_id
    bucket                  = var.bucket
    image_name              = var.image_name
    account_file            = var.account_file
    image_guest_os_features = ["UEFI_COMPATIBLE"]
    image_labels = {
      repro-disk = "` + rec.Disk.SHA256[:32] + `"
    }
  }
}
`)
	default:
		b.WriteString(`
  # Post-processors go here, after the provisioners: checksum, compress,
  # manifest; cloud/aws and cloud/gce (for a --boot disk) show amazon-import
  # and googlecompute-import.
}
`)
	}
	return b.String()
}

func varsHCL(rec *Record) string {
	return fmt.Sprintf(`# Values for %s; every variable is declared there, with
# these defaults. Set accelerator = "kvm" where /dev/kvm is usable.
accelerator      = "tcg"
memory           = 1024
cpus             = 1
headless         = true
boot_wait        = "1s"
shutdown_timeout = "10m"
output_directory = "output-repro-disk"
vm_name          = %s
`, packerTemplate, hclString(strings.TrimSuffix(rec.Disk.File, filepath.Ext(rec.Disk.File))))
}

// pluginsHCL declares the plugins for Packer 1.10 and later.
const pluginsHCL = `# For Packer 1.10 and later, which ship no plugins: copy this file to
# plugins.pkr.hcl and run packer init . (it downloads the plugins).
# Debian's packer 1.6.6 rejects required_plugins, and Packer 1.9 has these
# built in, so the directory leaves it out.
packer {
  required_plugins {
    qemu = {
      version = ">= 1.1.0"
      source  = "github.com/hashicorp/qemu"
    }
    amazon = {
      version = ">= 1.2.0"
      source  = "github.com/hashicorp/amazon"
    }
    googlecompute = {
      version = ">= 1.1.0"
      source  = "github.com/hashicorp/googlecompute"
    }
  }
}
`

// bootCheckScript is the shell-local step of a --boot template.
const bootCheckScript = `#!/bin/bash
# Written by repro disk --packer: checks, from the host, the VM that Packer
# booted. It waits for REPRO_EXPECT on the serial console (REPRO_SERIAL) for
# at most REPRO_TIMEOUT seconds, GETs / on 127.0.0.1:REPRO_HTTP_PORT unless
# it is 0, then presses Ctrl-Alt-Del through the QEMU monitor on
# 127.0.0.1:REPRO_MONITOR_PORT: systemd reboots, and QEMU (-no-reboot) stops.
# Needs bash (for /dev/tcp), sed, grep, tail and date.
set -u
deadline=$(( $(date +%s) + REPRO_TIMEOUT ))
console() { sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$REPRO_SERIAL" 2>/dev/null; }
until console | grep -qF -- "$REPRO_EXPECT"; do
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "repro: the console did not show \"$REPRO_EXPECT\" within $REPRO_TIMEOUT s; its end:" >&2
		console | tail -n 40 >&2
		exit 1
	fi
	sleep 2
done
echo "repro: the console shows \"$REPRO_EXPECT\""
if [ "$REPRO_HTTP_PORT" != 0 ]; then
	status=""
	for _ in $(seq 1 30); do
		if exec 3<>"/dev/tcp/127.0.0.1/$REPRO_HTTP_PORT"; then
			printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
			IFS= read -r -t 10 status <&3 || true
			exec 3<&- 3>&-
			case "$status" in *" 200 "*) break ;; esac
		fi
		sleep 1
	done
	case "$status" in
	*" 200 "*) echo "repro: GET / through 127.0.0.1:$REPRO_HTTP_PORT: $status" ;;
	*)
		echo "repro: GET / through 127.0.0.1:$REPRO_HTTP_PORT did not answer 200 (${status:-no answer})" >&2
		exit 1
		;;
	esac
fi
exec 4<>"/dev/tcp/127.0.0.1/$REPRO_MONITOR_PORT" || exit 1
echo "sendkey ctrl-alt-delete" >&4
sleep 1
exec 4<&- 4>&-
echo "repro: asked the guest to stop (Ctrl-Alt-Del)"
`
