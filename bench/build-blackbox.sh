#!/bin/sh
# build-blackbox.sh VERSION OUT builds blackbox_exporter VERSION from its
# source on the Go module proxy into OUT, for the load harness to measure
# against (docs/performance.md). Debian packages an older release; no
# release binary is downloaded.
set -eu
version=$1
out=$2
go=${GO:-go}
module=github.com/prometheus/blackbox_exporter

src=$("$go" mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$src" ]; then
	echo "build-blackbox.sh: the Go module proxy did not serve $module@$version" >&2
	exit 1
fi
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -R "$src/." "$work"
chmod -R u+w "$work"
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
(cd "$work" && "$go" build -trimpath -o "$out" \
	-ldflags "-X github.com/prometheus/common/version.Version=${version#v}" .)
echo "built $out"
