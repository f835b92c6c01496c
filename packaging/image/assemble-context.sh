#!/usr/bin/env bash
# Assembles in CONTEXT the build context of sonde's image (the Dockerfile
# at the repository root): sonde built static for each platform named, and
# the few files it reads at run time. No base image can be pulled here, so
# the CA certificates and time zones come from this machine's Debian
# packages (ca-certificates, tzdata) instead of a base image's.
#
# Usage: assemble-context.sh CONTEXT PLATFORM...
#   PLATFORM: a linux GOARCH (amd64, arm64, ppc64le, s390x) or arm/vN
#   (GOARCH=arm GOARM=N), as `--platform linux/PLATFORM` names it.
# Environment: GO (default go), LDFLAGS (the Makefile's version stamp).
#
# CONTEXT then holds:
#   rootfs/                    copied to / as is
#   bin/linux-<arch><variant>/sonde   one per platform, as the Dockerfile's
#                              TARGETOS, TARGETARCH and TARGETVARIANT name it
set -euo pipefail
# The image's files keep the modes they get here: readable by its non-root user.
umask 022

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
GO="${GO:-go}"
LDFLAGS="${LDFLAGS:-}"

ca_bundle=/etc/ssl/certs/ca-certificates.crt
zoneinfo=/usr/share/zoneinfo

die() { echo "assemble-context: $*" >&2; exit 1; }

# assemble_rootfs writes every file of the image but the binary.
assemble_rootfs() {
  local rootfs="$1"
  [ -s "$ca_bundle" ] || die "$ca_bundle is missing: apt-get install ca-certificates"
  [ -d "$zoneinfo" ] || die "$zoneinfo is missing: apt-get install tzdata"
  rm -rf "$rootfs"
  install -d -m 0755 "$rootfs/etc/ssl/certs" "$rootfs/etc/sonde" "$rootfs/etc/blackbox_exporter" \
    "$rootfs/usr/share" "$rootfs/bin"
  install -m 0644 "$here/passwd" "$here/group" "$rootfs/etc/"
  install -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  cp -R --no-preserve=ownership "$zoneinfo" "$rootfs/usr/share/zoneinfo"
  # Debian's zoneinfo/localtime points at the host's /etc/localtime, which
  # the image lacks: an absolute link would dangle there (or, in a mounted
  # tree, lead out of it).
  find "$rootfs/usr/share/zoneinfo" -type l -lname '/*' -delete
  # The example configuration sits at blackbox_exporter's path, and the
  # path the image's command names links to it, so that a configuration
  # mounted at either path is the one read (docs/container.md).
  install -m 0644 "$repo/example.yml" "$rootfs/etc/blackbox_exporter/config.yml"
  ln -s ../blackbox_exporter/config.yml "$rootfs/etc/sonde/config.yml"
}

# build_binary builds sonde for one platform, static (CGO_ENABLED=0: a
# FROM scratch image has no C library) and stamped as `make build` stamps it.
build_binary() {
  local ctx="$1" platform="$2" goarch goarm=""
  case "$platform" in
    arm/v[5-7]) goarch=arm goarm="${platform#arm/v}" ;;
    */*) die "unknown platform linux/$platform: use a GOARCH, or arm/v5 to arm/v7" ;;
    *) goarch="$platform" ;;
  esac
  local out="$ctx/bin/linux-${platform//\//}/sonde"
  echo "building $out (GOARCH=$goarch${goarm:+ GOARM=$goarm})"
  (cd "$repo" && env CGO_ENABLED=0 GOOS=linux GOARCH="$goarch" ${goarm:+GOARM="$goarm"} \
    "$GO" build -trimpath -ldflags "$LDFLAGS" -o "$out" .) ||
    die "building sonde for linux/$platform failed"
}

main() {
  [ $# -ge 2 ] || die "usage: assemble-context.sh CONTEXT PLATFORM..."
  local ctx="$1"
  shift
  mkdir -p "$ctx"
  assemble_rootfs "$ctx/rootfs"
  rm -rf "$ctx/bin"
  local platform
  for platform in "$@"; do
    build_binary "$ctx" "$platform"
  done
}

main "$@"
