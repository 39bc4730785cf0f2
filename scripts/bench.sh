#!/usr/bin/env bash
# Benchmarks switchboard's peerjs dialect against the anchor servers
# (floor-relay, the npm PeerJS server `peer`, matchbox_server) in one run,
# with the shared kit in ../shared/bench (see its README): workloads idle,
# relay and handshake, interleaved repetitions, medians and the raw lines in
# ../shared/bench/results/. Builds the release binary first.
#
#   scripts/bench.sh                 # REPS=3, every workload and server
#   REPS=5 scripts/bench.sh -w relay,handshake
#
# Extra arguments go to run-anchors.sh (see `../shared/bench/run-anchors.sh --help`).
# switchboard runs as shipped (default logging) with the settings `peer` gets from the kit: key `peerjs` (the
# default), a concurrent limit high enough for the idle workload, and the
# WebSocket at /peerjs (`--path /`, the default, as sigbench expects).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

KIT=${BENCH_KIT:-../shared/bench}
[[ -x $KIT/run-anchors.sh ]] || { echo "bench.sh: no benchmark kit at $KIT (set BENCH_KIT)" >&2; exit 1; }

cargo build --release --quiet --bin switchboard

exec "$KIT/run-anchors.sh" \
    -c "exec env -u RUST_LOG $PWD/target/release/switchboard --dialect peerjs --listen 127.0.0.1:{PORT} --concurrent-limit ${PEERJS_LIMIT:-1000000}" \
    --candidate-name switchboard \
    --candidate-path /peerjs \
    "$@"
