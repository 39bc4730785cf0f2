#!/usr/bin/env bash
# Benchmarks switchboard's native protocol (/ws, welcome, signal) next to the
# shared kit's floor-relay, on the kit's relay and idle workloads, with the
# project's own load tool bench/native (nativebench; see its README). Every
# run gets a fresh server on a free 127.0.0.1 port; repetitions interleave
# the servers. Raw result lines are appended to
# bench/native/results/native-YYYYMMDD.jsonl; the medians of this run are
# printed as Markdown tables at the end.
#
#   scripts/bench-native.sh                      # REPS=3, relay and idle, both servers
#   REPS=5 scripts/bench-native.sh -w relay
#   REPS=1 RELAY_SECONDS=3 IDLE_CONNS=2000 SWITCHBOARD_BIN=/tmp/sb scripts/bench-native.sh   # quick check
#
# Options:
#   -w, --workloads LIST   comma-separated, from: relay idle [WORKLOADS, default both]
#   -s, --servers LIST     comma-separated, from: floor-relay switchboard [SERVERS, default both]
#   -h, --help             this text
#
# Environment (whole numbers):
#   REPS=3                 repetitions
#   RELAY_PAIRS=100 RELAY_WINDOW=8 RELAY_SIZE=1000 RELAY_SECONDS=10
#   WARMUP=2               seconds of unrecorded relay on the same fresh server
#                          before the measured one (0 = none)
#   IDLE_CONNS=10000       idle connections
#   COOLDOWN=1             seconds of rest after each run
#   QUIET_CPU=30 QUIET_WAIT=30   before each run, wait (at most QUIET_WAIT s)
#                          until other processes use under QUIET_CPU % of one CPU
#   SWITCHBOARD_BIN=PATH   use this switchboard binary instead of building
#                          target/release/switchboard (the fat-LTO build takes minutes)
#   SB_ARGS="..."          extra switchboard flags, e.g. "--rate 0": with few
#                          pairs each connection may pass the default limit of
#                          2000 msgs/s, and switchboard then closes it (1008)
#   KIT=../shared/bench    the shared benchmark kit (for floor-relay; BENCH_KIT works too)
#   OUT=FILE               results file to append to
#
# The kit's third workload, handshake, is not measured here (the native
# protocol's call setup differs from PeerJS's, so there is no like-for-like
# figure); use scripts/bench.sh for the peerjs dialect's handshake numbers.
#
# switchboard runs as shipped (default logging, default rate limit 2000/s
# with burst 4000, which the relay workload stays under) with
# --max-connections 1000000 so the idle workload is never refused.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

die() { echo "bench-native: $*" >&2; exit 1; }
note() { echo "bench-native: $*" >&2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

WORKLOADS=${WORKLOADS:-relay idle}
SERVERS=${SERVERS:-floor-relay switchboard}
while (($#)); do
    case $1 in
        -w | --workloads) WORKLOADS=${2:?--workloads needs a list}; shift 2 ;;
        -s | --servers) SERVERS=${2:?--servers needs a list}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
read -r -a WORKLOAD_LIST <<<"${WORKLOADS//,/ }"
read -r -a SERVER_LIST <<<"${SERVERS//,/ }"
for w in "${WORKLOAD_LIST[@]}"; do
    case $w in relay | idle) ;; handshake) die "handshake is not measured by this script (see --help)" ;; *) die "unknown workload '$w' (relay, idle)" ;; esac
done
for s in "${SERVER_LIST[@]}"; do
    case $s in floor-relay | switchboard) ;; *) die "unknown server '$s' (floor-relay, switchboard)" ;; esac
done

REPS=${REPS:-3}
RELAY_PAIRS=${RELAY_PAIRS:-100}
RELAY_WINDOW=${RELAY_WINDOW:-8}
RELAY_SIZE=${RELAY_SIZE:-1000}
RELAY_SECONDS=${RELAY_SECONDS:-10}
WARMUP=${WARMUP:-2}
IDLE_CONNS=${IDLE_CONNS:-10000}
COOLDOWN=${COOLDOWN:-1}
QUIET_CPU=${QUIET_CPU:-30}
QUIET_WAIT=${QUIET_WAIT:-30}
for v in REPS RELAY_PAIRS RELAY_WINDOW RELAY_SIZE RELAY_SECONDS WARMUP IDLE_CONNS COOLDOWN QUIET_CPU QUIET_WAIT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((REPS > 0)) || die "REPS must be at least 1"

KIT=${KIT:-${BENCH_KIT:-../shared/bench}}
[[ -f $KIT/Cargo.toml ]] || die "no benchmark kit at $KIT (set KIT to the shared/bench checkout)"
KIT=$(cd "$KIT" && pwd)

# ---------------------------------------------------------------- builds
note "building bench/native (nativebench)"
cargo build --release --quiet --manifest-path bench/native/Cargo.toml
NB=$ROOT/bench/native/target/release/nativebench

if [[ -n ${SWITCHBOARD_BIN:-} ]]; then
    [[ -x $SWITCHBOARD_BIN ]] || die "SWITCHBOARD_BIN=$SWITCHBOARD_BIN is not an executable"
    SB=$(cd "$(dirname "$SWITCHBOARD_BIN")" && pwd)/$(basename "$SWITCHBOARD_BIN")
else
    note "building switchboard (release; set SWITCHBOARD_BIN to skip)"
    cargo build --release --quiet --bin switchboard
    SB=$ROOT/target/release/switchboard
fi

FLOOR=$KIT/target/release/floor-relay
if [[ ! -x $FLOOR ]]; then
    note "building the kit's floor-relay"
    cargo build --release --quiet --manifest-path "$KIT/Cargo.toml" --bin floor-relay
fi
[[ -x $FLOOR ]] || die "no floor-relay at $FLOOR after building it"

# ---------------------------------------------------------------- limits
# Servers inherit this limit; nativebench raises its own to the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
if [[ $nofile != unlimited && " ${WORKLOAD_LIST[*]} " == *" idle "* ]] && ((nofile < IDLE_CONNS + 200)); then
    die "open-file limit is $nofile, too low for IDLE_CONNS=$IDLE_CONNS: raise the hard limit (ulimit -Hn) or lower IDLE_CONNS"
fi

# ---------------------------------------------------------------- servers
server_cmd() { # name port -> one argument per line
    case $1 in
        floor-relay) printf '%s\n' "$FLOOR" --listen "127.0.0.1:$2" ;;
        switchboard)
            local -a extra
            read -r -a extra <<<"${SB_ARGS:-}"
            printf '%s\n' env -u RUST_LOG "$SB" --listen "127.0.0.1:$2" --max-connections 1000000 "${extra[@]}"
            ;;
    esac
}

proto_of() {
    case $1 in floor-relay) echo floor ;; switchboard) echo native ;; esac
}

SPID=""
STOP_WAIT=50
# shellcheck source=scripts/lib/server.sh
source scripts/lib/server.sh # (the script runs from the repo root)
trap 'stop_server' EXIT
trap 'note interrupted; exit 130' INT TERM

start_server() { # name port log; sets SPID
    local -a cmd
    mapfile -t cmd < <(server_cmd "$1" "$2")
    # `env` and the server exec in place: $! is the server's own PID.
    "${cmd[@]}" </dev/null >"$3" 2>&1 &
    SPID=$!
    "$NB" wait-port --port "$2" --timeout 30 2>>"$3" && kill -0 "$SPID" 2>/dev/null
}

# ---------------------------------------------------------------- runs
# busy_ticks and wait_quiet: scripts/lib/server.sh.

RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)-$$
RESULTS=$ROOT/bench/native/results
OUT=${OUT:-$RESULTS/native-$(date -u +%Y%m%d).jsonl}
LOGDIR=$RESULTS/logs/$RUN_ID
mkdir -p "$LOGDIR" "$(dirname "$OUT")"
SB_VERSION=$("$SB" --version 2>/dev/null | head -n 1 || echo unknown)
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

workload_args() {
    case $1 in
        relay) echo "relay --pairs $RELAY_PAIRS --window $RELAY_WINDOW --size $RELAY_SIZE --seconds $RELAY_SECONDS --warmup $WARMUP" ;;
        idle) echo "idle --conns $IDLE_CONNS" ;;
    esac
}

run_one() { # rep workload server
    local rep=$1 w=$2 name=$3 port slog elog line rc=0
    local -a args
    port=$("$NB" free-port)
    slog=$LOGDIR/r$rep-$w-$name.server.log
    elog=$LOGDIR/r$rep-$w-$name.client.log
    wait_quiet
    printf 'bench-native: [rep %d/%d] %-5s %-11s ' "$rep" "$REPS" "$w" "$name" >&2
    if ! start_server "$name" "$port" "$slog"; then
        echo "did not start (log: $slog)" >&2
        stop_server
        line="{\"workload\":\"$w\",\"proto\":\"$(proto_of "$name")\",\"tags\":{\"server\":\"$name\",\"rep\":\"$rep\",\"run\":\"$RUN_ID\"},"
        line+="\"error\":\"server did not start on 127.0.0.1:$port (log: $slog)\"}"
        echo "$line" >>"$OUT"
        return
    fi
    read -r -a args <<<"$(workload_args "$w")"
    line=$(timeout -k 10 $((RELAY_SECONDS + WARMUP + 180)) "$NB" "${args[@]}" \
        --proto "$(proto_of "$name")" --port "$port" --server-pid "$SPID" \
        --tag "server=$name" --tag "rep=$rep" --tag "run=$RUN_ID" --tag "rev=$REV" \
        --tag "switchboard=$SB_VERSION" 2>"$elog") || rc=$?
    kill -0 "$SPID" 2>/dev/null || note "the server exited during the run (log: $slog)"
    stop_server
    if [[ -z $line ]]; then
        echo "FAILED (exit $rc, see $elog)" >&2
        line="{\"workload\":\"$w\",\"proto\":\"$(proto_of "$name")\",\"tags\":{\"server\":\"$name\",\"rep\":\"$rep\",\"run\":\"$RUN_ID\"},"
        line+="\"error\":\"nativebench exited $rc with no result (124 = timeout; stderr: $elog)\"}"
    else
        tail -n 1 "$elog" >&2
    fi
    echo "$line" >>"$OUT"
    sleep "$COOLDOWN"
}

note "run $RUN_ID: $REPS rep(s) x [${WORKLOAD_LIST[*]}] x [${SERVER_LIST[*]}]; switchboard: $SB"
for ((rep = 1; rep <= REPS; rep++)); do
    for w in "${WORKLOAD_LIST[@]}"; do
        for s in "${SERVER_LIST[@]}"; do
            run_one "$rep" "$w" "$s"
        done
    done
done

echo
echo "## Native protocol vs floor-relay, run $RUN_ID ($REPS rep(s))"
echo
echo "relay: $RELAY_PAIRS pairs, window $RELAY_WINDOW, ${RELAY_SIZE}-byte payload, ${RELAY_SECONDS} s after ${WARMUP} s warm-up; idle: $IDLE_CONNS connections. $(nproc) CPUs, client and server sharing them."
"$NB" report --input "$OUT" --run "$RUN_ID"
echo
note "raw lines: $OUT (logs: $LOGDIR)"
