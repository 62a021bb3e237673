#!/bin/sh
# The workspace's skeleton, for the container build's dependency layer:
# every package's manifest, Cargo.lock and .cargo/config.toml, and a stub at
# the path of every target cargo knows (libraries, binaries, examples, tests,
# benches), so that cargo reads the manifests and builds every dependency
# without our sources. Build scripts are copied whole. Run it from the
# workspace root:
#
#   sh examples/deploy/skeleton.sh OUT
#
# OUT's content depends only on the manifests and the lock file, so the
# Dockerfile's layer built from it stays cached across edits to the sources.
set -eu

out=$1
metadata=$(cargo metadata --no-deps --format-version 1 --offline)
root=$(printf '%s\n' "$metadata" | grep -o '"workspace_root":"[^"]*"' | sed 's/^"workspace_root":"\(.*\)"$/\1/')
[ -n "$root" ] || { echo "skeleton.sh: no workspace_root in cargo metadata" >&2; exit 1; }

# A path of the workspace, relative to its root; anything outside it fails.
relative() {
    case $1 in
        "$root"/*) printf '%s\n' "${1#"$root"/}" ;;
        *) echo "skeleton.sh: $1 is outside the workspace $root" >&2; exit 1 ;;
    esac
}

place() { # SOURCE: copies it to the same relative path in OUT
    rel=$(relative "$1")
    mkdir -p "$out/$(dirname "$rel")"
    cp "$1" "$out/$rel"
}

place "$root/Cargo.toml"
place "$root/Cargo.lock"
if [ -f "$root/.cargo/config.toml" ]; then
    place "$root/.cargo/config.toml"
fi

printf '%s\n' "$metadata" | grep -o '"manifest_path":"[^"]*"' \
    | sed 's/^"manifest_path":"\(.*\)"$/\1/' > "$out/.manifests"
printf '%s\n' "$metadata" \
    | grep -o '"kind":\["[a-z-]*"[^]]*\],"crate_types":\[[^]]*\],"name":"[^"]*","src_path":"[^"]*"' \
    | sed 's/^"kind":\["\([a-z-]*\)".*"src_path":"\(.*\)"$/\1 \2/' > "$out/.targets"
[ -s "$out/.manifests" ] && [ -s "$out/.targets" ] \
    || { echo "skeleton.sh: cargo metadata listed no packages or no targets" >&2; exit 1; }

while read -r manifest; do
    place "$manifest"
done < "$out/.manifests"

while read -r kind path; do
    rel=$(relative "$path")
    mkdir -p "$out/$(dirname "$rel")"
    case $kind in
        custom-build) cp "$path" "$out/$rel" ;;
        lib | rlib | dylib | cdylib | staticlib | proc-macro)
            printf '//! A stub: the dependency layer builds against it.\n' > "$out/$rel" ;;
        *) printf '//! A stub: the dependency layer builds against it.\nfn main() {}\n' > "$out/$rel" ;;
    esac
done < "$out/.targets"
rm "$out/.manifests" "$out/.targets"
