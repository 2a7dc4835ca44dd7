# shellcheck shell=bash
# Helpers shared by the scripts under tools/ (sourced, never run).
#
# Bash stance: every script here runs on bash 3.2 (macOS' /bin/bash) and newer, so none
# uses bash 4 features (associative arrays, mapfile, ${x,,}, wait -n, ...), and an array
# that may be empty is expanded as ${name[@]+"${name[@]}"} (bash < 4.4 calls a plain
# "${name[@]}" of an empty array unbound under set -u). tests/tools checks both.

say() { echo "==> $*" >&2; }
fail() { echo "error: $*" >&2; exit 1; }

# The SHA-256 of a file, hex: sha256sum on Linux, shasum on macOS.
sha256_of() {
    if command -v sha256sum >/dev/null; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi
}

# The host as Go names it (linux-amd64, darwin-arm64, ...): how helm, kubectl and kind
# name their downloads.
host_platform() {
    local os arch
    case "$(uname -s)" in
        Linux) os=linux ;;
        Darwin) os=darwin ;;
        *) fail "unsupported operating system $(uname -s): the kind flow runs on Linux and macOS" ;;
    esac
    case "$(uname -m)" in
        x86_64 | amd64) arch=amd64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) fail "unsupported architecture $(uname -m): the kind flow runs on amd64 and arm64" ;;
    esac
    echo "$os-$arch"
}

# 0 when version $1 (v1.2.3 or 1.2.3, anything after the numbers ignored) is at least $2.
version_at_least() {
    local have want i
    # shellcheck disable=SC2207  # split on dots on purpose; versions have no spaces
    have=($(echo "${1#v}" | sed -E 's/^([0-9]+)\.([0-9]+)\.([0-9]+).*/\1 \2 \3/'))
    # shellcheck disable=SC2207
    want=($(echo "${2#v}" | sed -E 's/^([0-9]+)\.([0-9]+)\.([0-9]+).*/\1 \2 \3/'))
    for i in 0 1 2; do
        ((${have[i]:-0} > ${want[i]:-0})) && return 0
        ((${have[i]:-0} < ${want[i]:-0})) && return 1
    done
    return 0
}
