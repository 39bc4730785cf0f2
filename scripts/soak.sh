#!/usr/bin/env bash
# Soak test of the native protocol: IDLE idle connections held open while
# PAIRS caller/callee pairs make calls (call, ring, accept, signals each way,
# hangup; new connections every RECONNECT_EVERY calls) for DURATION seconds,
# driven by nativebench (bench/native, `nativebench soak`) against a fresh
# switchboard on a free 127.0.0.1 port. Every relayed signal carries its
# pair, its sender and the sender's sequence number, and the receiver checks
# them. Prints the server's RSS and open files over time, then the totals.
# Exits non-zero if a message was lost, duplicated, mis-routed, out of order
# or late, a call failed, an idle connection was closed by the server, or
# the server died.
#
#   scripts/soak.sh                  # full: 20,000 idle + 50 pairs for 600 s, release builds
#   SHORT=1 scripts/soak.sh          # CI: 2,000 idle + 10 pairs for 60 s, debug builds
#   IDLE=5000 DURATION=120 SWITCHBOARD_BIN=target/release/switchboard scripts/soak.sh
#
# Options:
#   -h, --help             this text
#
# Environment (whole numbers):
#   SHORT=1                short mode: the smaller defaults below, debug builds
#   IDLE=20000             idle connections (SHORT: 2000); lowered, with a
#                          note, when the open-file hard limit is too low
#   PAIRS=50               caller/callee pairs (SHORT: 10)
#   DURATION=600           seconds of call traffic (SHORT: 60)
#   SAMPLE=10              seconds between RSS samples (SHORT: 5)
#   SIGNALS=8              signals each side sends per call
#   INTERVAL_MS=100        each pair starts a call this often
#   RECONNECT_EVERY=100    a pair's connections are replaced every this many calls
#   SWITCHBOARD_BIN=PATH   test this binary instead of building one
#                          (SHORT: target/debug/switchboard, else target/release)
#   SB_ARGS="..."          extra switchboard flags
#   CARGO_TARGET_DIR=DIR   shared by both builds [default: target/ of this repo]
#
# The server runs as shipped (default flags, default logging); its log goes
# to $CARGO_TARGET_DIR/soak/. Each connection stays far under the default
# rate limit (2000 messages/s); loopback is exempt from the per-address
# limits.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

die() { echo "soak: $*" >&2; exit 1; }
note() { echo "soak: $*" >&2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

while (($#)); do
    case $1 in
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

SHORT=${SHORT:-}
if [[ -n $SHORT && $SHORT != 0 ]]; then
    MODE=short PROFILE=debug
    IDLE=${IDLE:-2000} PAIRS=${PAIRS:-10} DURATION=${DURATION:-60} SAMPLE=${SAMPLE:-5}
else
    MODE=full PROFILE=release
    IDLE=${IDLE:-20000} PAIRS=${PAIRS:-50} DURATION=${DURATION:-600} SAMPLE=${SAMPLE:-10}
fi
SIGNALS=${SIGNALS:-8}
INTERVAL_MS=${INTERVAL_MS:-100}
RECONNECT_EVERY=${RECONNECT_EVERY:-100}
for v in IDLE PAIRS DURATION SAMPLE SIGNALS INTERVAL_MS RECONNECT_EVERY; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$TARGET"
TARGET=$(cd "$TARGET" && pwd)
export CARGO_TARGET_DIR=$TARGET
cargo_profile=()
[[ $PROFILE == release ]] && cargo_profile=(--release)

T0=$(date +%s)

# ---------------------------------------------------------------- builds
note "building nativebench ($PROFILE, in $TARGET)"
cargo build "${cargo_profile[@]}" --quiet --manifest-path bench/native/Cargo.toml
NB=$TARGET/$PROFILE/nativebench

if [[ -n ${SWITCHBOARD_BIN:-} ]]; then
    [[ -x $SWITCHBOARD_BIN ]] || die "SWITCHBOARD_BIN=$SWITCHBOARD_BIN is not an executable"
    SB=$(cd "$(dirname "$SWITCHBOARD_BIN")" && pwd)/$(basename "$SWITCHBOARD_BIN")
else
    note "building switchboard ($PROFILE; set SWITCHBOARD_BIN to skip)"
    cargo build "${cargo_profile[@]}" --quiet --bin switchboard
    SB=$TARGET/$PROFILE/switchboard
fi
T_BUILT=$(date +%s)

# ---------------------------------------------------------------- limits
# Server and client each hold every connection: raise the soft open-file
# limit to the hard one (both inherit it) and fit IDLE under it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
HEADROOM=256 # listener, logs, the runtime's own descriptors, pairs reconnecting
if [[ $nofile != unlimited ]] && ((IDLE + 2 * PAIRS + HEADROOM > nofile)); then
    fit=$((nofile - 2 * PAIRS - HEADROOM))
    ((fit > 0)) || die "the open-file limit ($nofile) is too low even for $PAIRS pairs"
    note "the open-file hard limit is $nofile: IDLE=$IDLE with $((2 * PAIRS)) pair connections needs" \
        "$((IDLE + 2 * PAIRS + HEADROOM)); LOWERING IDLE TO $fit (raise 'ulimit -Hn' as root for the full count)"
    IDLE=$fit
fi

# ---------------------------------------------------------------- server
LOG_DIR=$TARGET/soak
mkdir -p "$LOG_DIR"
LOG=$LOG_DIR/server-$(date -u +%Y%m%dT%H%M%SZ)-$$.log
PORT=$("$NB" free-port)
read -r -a extra <<<"${SB_ARGS:-}"

SPID=""
# shellcheck source=scripts/lib/server.sh
source scripts/lib/server.sh # (the script runs from the repo root)
trap 'stop_server' EXIT
trap 'note interrupted; exit 130' INT TERM

# `env` execs the server in place: $! is the server's own PID.
env -u RUST_LOG "$SB" --listen "127.0.0.1:$PORT" "${extra[@]}" </dev/null >"$LOG" 2>&1 &
SPID=$!
"$NB" wait-port --port "$PORT" --timeout 30 2>>"$LOG" && kill -0 "$SPID" 2>/dev/null ||
    die "switchboard did not start on 127.0.0.1:$PORT (log: $LOG)"

# ---------------------------------------------------------------- soak
note "$MODE mode: $IDLE idle + $PAIRS pairs for $DURATION s against $SB (pid $SPID, port $PORT)"
rc=0
# Bounded: connects (at most 120 s + IDLE/200 s), traffic, then calls under way.
timeout -k 10 $((DURATION + IDLE / 200 + 400)) "$NB" soak --port "$PORT" --server-pid "$SPID" \
    --idle "$IDLE" --pairs "$PAIRS" --seconds "$DURATION" --sample "$SAMPLE" --signals "$SIGNALS" \
    --interval-ms "$INTERVAL_MS" --reconnect-every "$RECONNECT_EVERY" || rc=$?

if ! kill -0 "$SPID" 2>/dev/null; then
    note "the server exited during the soak (log: $LOG)"
    ((rc)) || rc=1
fi
stop_server
problems=$(grep -cE ' (WARN|ERROR) ' "$LOG" || true)
note "server log: $LOG ($problems WARN/ERROR lines)"
T_END=$(date +%s)
note "$MODE mode took $((T_END - T0)) s: builds $((T_BUILT - T0)) s, soak $((T_END - T_BUILT)) s"
case $rc in
    0) ;;
    124 | 137) note "nativebench ran past its time bound"; exit 1 ;;
    *) exit "$rc" ;;
esac
