# repro: make help lists the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --abbrev=12 2>/dev/null || echo devel)
# The binary itself is built reproducibly.
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-buildid= -X main.version=$(VERSION)"

.PHONY: help build image example examples test lint generate check-generate check-ci-examples boot-test bench fuzz

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/repro
	$(GOBUILD) -o bin/repro ./cmd/repro

# repro's own image (specs/repro): the go: entry compiles ./cmd/repro per
# platform, on Debian packages the lock pins by sha256. IMAGE_FLAGS=--offline
# builds from the cache alone once the .debs are in it.
IMAGE_FLAGS ?=
image: build ## build repro's own image (specs/repro, linux/amd64 and linux/arm64) into out/repro (IMAGE_FLAGS=--offline: from the cache alone)
	bin/repro build --locked $(IMAGE_FLAGS) -f specs/repro/repro.yaml -o oci:out/repro:latest

example: build ## build the static-site example offline into out/static-site
	bin/repro build --offline -f specs/examples/static-site/repro.yaml -o oci:out/static-site:latest

# nginx and golden-nginx pin Debian packages in a lock that is not
# committed (Debian's archive moves daily): repro lock -f SPEC, with the
# network, comes first; TestE2EGoldenRealArchive builds them.
examples: build ## build every example spec offline but the two Debian ones, which need repro lock first (go-server's go: entries compile the server)
	for s in specs/examples/*/*.yaml; do \
	  case $$s in */nginx/*|*/golden-nginx/*) continue;; esac; \
	  n=$$(basename $$(dirname $$s))-$$(basename $$s .yaml); bin/repro build --offline -f $$s -o oci:out/$$n:latest || exit 1; \
	done

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; \
	elif [ "$$CI" = true ]; then echo "staticcheck missing (.ci/run installs it)"; exit 1; \
	else echo "staticcheck not installed: skipped (CI runs it)"; fi

# The initramfs's /init that repro disk --boot embeds: its bytes are part of
# the disk layout (repro-boot/1), so it is built once, reproducibly, with the
# Go toolchain CI pins (go1.26.8), and checked in.
INIT_BIN := pkg/disk/initramfs/init-amd64
BUILD_INIT = CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOFLAGS= $(GO) build -trimpath -buildvcs=false -ldflags="-s -w -buildid=" -o

generate: ## regenerate specs/repro.schema.json, the field reference in specs/README.md and the initramfs /init
	$(GO) run ./pkg/spec/internal/genschema -dir specs
	$(BUILD_INIT) $(INIT_BIN) ./pkg/disk/internal/initprog

check-generate: ## fail when the generated files (specs/, the initramfs /init) are stale
	$(GO) run ./pkg/spec/internal/genschema -dir specs -check
	@tmp=$$(mktemp) && $(BUILD_INIT) $$tmp ./pkg/disk/internal/initprog && \
	  if cmp -s $$tmp $(INIT_BIN); then rm -f $$tmp; else rm -f $$tmp; echo "$(INIT_BIN) is stale (or this Go is not the one it was built with): make generate"; exit 1; fi

boot-test: build ## the boots CI leaves out: packer build of a --boot template, a gce disk on virtio-scsi (a few minutes under TCG)
	REPRO_BOOT_MORE=1 $(GO) test -count=1 -run 'TestE2EDiskBootMore' -v -timeout 30m ./cmd/repro/e2e

check-ci-examples: build ## check specs/ci with actionlint, GitLab's schema and k8s.io/api (a module of its own, .ci/cicheck)
	cd .ci/cicheck && $(GO) vet ./... && $(GO) test -count=1 ./... && $(GO) run . -repo ../.. -repro ../../bin/repro

test: lint check-generate check-ci-examples ## everything CI checks: lint, generated files, CI examples, unit, golden, fuzz seeds and end-to-end tests
	$(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) fuzz

# Fuzz budgets are execution counts, not durations: a duration races Go
# 1.26's fuzz coordinator at the deadline (golang/go#75804) and fails with
# "context deadline exceeded" and no crasher.
FUZZ_N ?= 1
fuzz: ## run the fuzz targets briefly (FUZZ_N scales the execution counts)
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $$((20000 * $(FUZZ_N)))x ./pkg/spec
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $$((10000 * $(FUZZ_N)))x ./pkg/imagetest
	$(GO) test -run '^$$' -fuzz '^FuzzLongScalar$$' -fuzztime $$((200 * $(FUZZ_N)))x ./internal/yamlpos
	$(GO) test -run '^$$' -fuzz '^FuzzCleanPath$$' -fuzztime $$((200000 * $(FUZZ_N)))x ./pkg/spec
	$(GO) test -run '^$$' -fuzz '^FuzzMatchGlob$$' -fuzztime $$((200000 * $(FUZZ_N)))x ./pkg/layer
	$(GO) test -run '^$$' -fuzz '^FuzzPlanContained$$' -fuzztime $$((5000 * $(FUZZ_N)))x ./pkg/disk
	$(GO) test -run '^$$' -fuzz '^FuzzCheckTar$$' -fuzztime $$((20000 * $(FUZZ_N)))x ./pkg/rootfs
	$(GO) test -run '^$$' -fuzz '^FuzzCheckLayer$$' -fuzztime $$((10000 * $(FUZZ_N)))x ./pkg/base
	$(GO) test -run '^$$' -fuzz '^FuzzManifest$$' -fuzztime $$((20000 * $(FUZZ_N)))x ./pkg/base
	$(GO) test -run '^$$' -fuzz '^FuzzCheckGzipBlocks$$' -fuzztime $$((5000 * $(FUZZ_N)))x ./pkg/compress

bench: build ## go benchmarks, repro against umoci and tar+gzip on Go's src tree, the fleet, a two-platform go: build against ko, and what a second push sends in formats 1 and 2
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/layer ./pkg/compress ./pkg/build
	.ci/bench
	.ci/bench-fleet
	.ci/bench-cache
	.ci/bench-go
	.ci/bench-push
