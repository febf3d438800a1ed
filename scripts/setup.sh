#!/usr/bin/env bash
# setup.sh: make this Debian 12 machine able to build, run and test cairn, then build it.
# Idempotent: installs only missing Debian packages (apt-get update only when something is
# missing), then configures and builds into build/ (RelWithDebInfo), leaving build/bin/cairn.
# Works as root, or through sudo when available. Node.js: Debian's nodejs/npm are installed only
# when no node >= 18 with npm is already on PATH (a newer node from elsewhere would conflict).
# Environment: SETUP_SKIP_BUILD=1 installs packages only; BUILD_DIR (default build);
# CAIRN_WERROR=OFF builds without -Werror (a compiler newer than Debian 12's gcc may warn about
# new things; CI keeps it on).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

BUILD_PKGS=(build-essential cmake pkg-config clang clang-format libclang-rt-14-dev git
    ca-certificates)
LIB_PKGS=(libevent-dev libisal-dev liblmdb-dev libxml2-dev libzstd-dev libssl-dev libcunit1-dev
    libjansson-dev)
CLIENT_PKGS=(awscli python3-boto3 s3cmd rclone restic duplicity curl)
# tools the cluster tests use: ss (iproute2) to see listening ports, pgrep (procps); the TLS
# tests (test_net_tls, test_tls.sh) make their certificates with the openssl CLI; mdb_copy
# (lmdb-utils) backs up the metadata online (docs/operations.md, test_runbooks.sh); the
# Kubernetes example's YAML is parsed by test_deploy_files.sh (python3-yaml); wrk is the outside
# load tool of bench/cluster.sh, which test_cluster_bench.sh runs
TOOL_PKGS=(iproute2 procps openssl lmdb-utils python3-yaml wrk)
# headless browser for the web console's and the website's tests (test_console.sh,
# test_website_browser.sh; Debian 12 main has `chromium`)
BROWSER_PKGS=(chromium)
# etcd (cluster coordination, docs/coordination.md). On a host with systemd the package may start a
# system etcd on 2379/2380; tests start their own members on free ports and never touch it.
ETCD_PKGS=(etcd-server etcd-client)

node_ok() {
    local major
    command -v node >/dev/null 2>&1 || return 1
    command -v npm >/dev/null 2>&1 || return 1
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || return 1
    [ "$major" -ge 18 ]
}

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        say "need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

install_missing() {
    local wanted=("${BUILD_PKGS[@]}" "${LIB_PKGS[@]}" "${CLIENT_PKGS[@]}" "${TOOL_PKGS[@]}"
        "${ETCD_PKGS[@]}" "${BROWSER_PKGS[@]}")
    local missing=() p
    if node_ok; then
        say "using node $(node --version) and npm $(npm --version) already on PATH"
    else
        wanted+=(nodejs npm)
    fi
    for p in "${wanted[@]}"; do
        installed "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "all ${#wanted[@]} Debian packages present"
        return
    fi
    say "installing ${#missing[@]} missing packages: ${missing[*]}"
    local log
    log=$(mktemp "${TMPDIR:-/tmp}/cairn-setup-apt.XXXXXX")
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 ||
        ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" </dev/null >>"$log" 2>&1; then
        tail -30 "$log" >&2
        say "apt-get failed (log: $log)" >&2
        exit 1
    fi
    rm -f "$log"
    for p in "${missing[@]}"; do
        installed "$p" || { say "package $p still missing after apt-get" >&2; exit 1; }
    done
    say "packages installed"
}

build() {
    local dir=${BUILD_DIR:-build}
    mkdir -p "$dir"
    say "configuring $dir (RelWithDebInfo, CAIRN_WERROR=${CAIRN_WERROR:-ON})"
    if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCAIRN_WERROR="${CAIRN_WERROR:-ON}" >"$dir/setup-configure.log" 2>&1; then
        tail -30 "$dir/setup-configure.log" >&2
        say "configure failed (log: $dir/setup-configure.log)" >&2
        exit 1
    fi
    say "building with $(nproc) jobs"
    if ! cmake --build "$dir" -j "$(nproc)" >"$dir/setup-build.log" 2>&1; then
        grep -E -A3 'error|Error' "$dir/setup-build.log" | head -60 >&2
        say "build failed (log: $dir/setup-build.log)" >&2
        exit 1
    fi
    [ -x "$dir/bin/cairn" ] || { say "$dir/bin/cairn was not built" >&2; exit 1; }
    say "built $dir/bin/cairn"
}

install_missing
if [ "${SETUP_SKIP_BUILD:-0}" = 1 ]; then
    say "SETUP_SKIP_BUILD=1: not building"
else
    build
fi
