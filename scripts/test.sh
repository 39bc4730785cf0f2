#!/usr/bin/env bash
# Installs what the tests need (Debian packages, npm packages) and runs them
# all: format and lint checks, Rust unit and integration tests, the browser
# tests in headless Chromium, and a one-minute soak. Safe to run again;
# installs are skipped when already present. Everything listens on 127.0.0.1
# only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '\n== %s\n' "$*" >&2; }

apt_install() { # package...
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    ((${#missing[@]})) || return 0
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [[ $(id -u) == 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

apt_install chromium coturn redis-server # coturn: tests/turn.rs; redis-server: tests/cluster*.rs
if [[ -f tests/browser/package.json ]] \
    && [[ ! -d tests/browser/node_modules/playwright-core || ! -d tests/browser/node_modules/easyrtc ]]; then
    log "installing npm packages for the browser tests"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

log "layout: the hub and the dialects do no I/O"
if grep -rnE '^\s*use (axum|tokio|socketioxide|redis|fred|hyper)' src/hub src/dialect; then
    echo "src/hub and src/dialect must not use I/O crates (see the layout in src/lib.rs)" >&2
    exit 1
fi

# A one-off build (CI, a fresh clone) gains nothing from incremental
# compilation data but pays for it in disk space.
[[ -n ${CI:-} ]] && export CARGO_INCREMENTAL=0

log "cargo fmt --check"
cargo fmt --check
log "cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

log "cargo test"
cargo test --quiet

# The real matchbox_socket client (webrtc-rs) against the matchbox dialect:
# its own crate, outside the main build, compiled into this target/ so that
# no second target tree is made (about 2 minutes and 450 MB the first time;
# no debug info). It starts the server itself, on 127.0.0.1 only.
log "matchbox client (tests/matchbox-client)"
cargo build --quiet --bin switchboard
cargo fmt --check --manifest-path tests/matchbox-client/Cargo.toml
CARGO_TARGET_DIR=$PWD/target cargo build --quiet --locked --manifest-path tests/matchbox-client/Cargo.toml
target/debug/matchbox-client-test "$PWD/target/debug/switchboard"

if compgen -G "tests/browser/*.test.mjs" >/dev/null; then
    log "browser tests (headless Chromium)"
    cargo build --quiet --bin switchboard
    mkdir -p artifacts
    SWITCHBOARD_BIN=$PWD/target/debug/switchboard node --test tests/browser/*.test.mjs
fi

# The native protocol's soak in its short mode: 2,000 idle connections and
# 10 calling pairs for 60 s, every relayed message checked (about a minute,
# plus a debug build of bench/native). Always in CI; SKIP_SOAK=1 skips it
# elsewhere. The full ten-minute run is `scripts/soak.sh` (docs/performance.md).
if [[ -n ${CI:-} || -z ${SKIP_SOAK:-} ]]; then
    log "soak, short mode (scripts/soak.sh)"
    SHORT=1 scripts/soak.sh
fi
