#!/usr/bin/env bash
# split-renames.sh DIR... rewrites the Go files of the given package
# directories (DIR/... for a tree) for the split of prober/core into small
# packages: references to the identifiers that left core go to their new
# packages, under their new names, and the imports follow. It changes only
# files that import prober/core, and can be run again on code written
# against the old core (it leaves what it already rewrote alone).
# Example: scripts/split-renames.sh prober/http
# -only=probelog,idn applies only the renames into those packages.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
go run "$here/split-renames.go" "$@"
dirs=()
for d in "$@"; do case "$d" in -*) ;; *) dirs+=("${d%/...}") ;; esac; done
unformatted="$(gofmt -l "${dirs[@]}")"
if [ -n "$unformatted" ]; then
  echo "gofmt would still change:" >&2
  echo "$unformatted" >&2
  exit 1
fi
