#!/usr/bin/env bash
# Builds sonde's container image IMAGE (name:tag) from the Dockerfile at
# the repository root, with buildah or else podman: one platform makes an
# image, several make a manifest list of one image each (the release's
# five: amd64 arm64 arm/v7 ppc64le s390x). Nothing is pulled (FROM
# scratch) and nothing runs inside the build, so no platform needs an
# emulator.
#
# Usage: build-image.sh IMAGE CONTEXT PLATFORM...
# Environment: IMAGE_BUILDER (buildah or podman; default the first installed),
#   GO, LDFLAGS (as assemble-context.sh takes them),
#   SOURCE_DATE_EPOCH (default: the commit's time), which dates the image
#   and its files: the image of a commit carries that commit's time, not
#   the time of its build.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

die() { echo "build-image: $*" >&2; exit 1; }

builder() {
  if [ -n "${IMAGE_BUILDER:-}" ]; then
    command -v "$IMAGE_BUILDER" >/dev/null || die "IMAGE_BUILDER=$IMAGE_BUILDER is not installed"
    echo "$IMAGE_BUILDER"
    return
  fi
  local tool
  for tool in buildah podman; do
    if command -v "$tool" >/dev/null; then echo "$tool"; return; fi
  done
  die "neither buildah nor podman is installed: apt-get install buildah (or podman)"
}

git_or() {
  local fallback="$1"
  shift
  git -C "$repo" "$@" 2>/dev/null || echo "$fallback"
}

main() {
  [ $# -ge 3 ] || die "usage: build-image.sh IMAGE CONTEXT PLATFORM..."
  local image="$1" ctx="$2"
  shift 2
  local tool
  tool="$(builder)"

  "$here/assemble-context.sh" "$ctx" "$@"

  local epoch version revision created
  epoch="${SOURCE_DATE_EPOCH:-$(git_or "$(date +%s)" log -1 --format=%ct)}"
  version="$(cat "$repo/VERSION")"
  revision="$(git_or unknown rev-parse HEAD)"
  created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"
  local build=("$tool" build --timestamp "$epoch" -f "$repo/Dockerfile"
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created")

  if [ $# -eq 1 ]; then
    "${build[@]}" --platform "linux/$1" -t "$image" "$ctx"
    echo "built $image for linux/$1 with $tool"
    return
  fi
  # --manifest adds to a list that exists: a list left by an earlier
  # build would keep its images beside the new ones, and an image of an
  # earlier one-platform build holds the name a list needs.
  "$tool" manifest rm "$image" >/dev/null 2>&1 || "$tool" rmi "$image" >/dev/null 2>&1 || true
  local platform
  for platform in "$@"; do
    "${build[@]}" --platform "linux/$platform" --manifest "$image" "$ctx"
  done
  echo "built the manifest list $image for $* with $tool"
}

main "$@"
