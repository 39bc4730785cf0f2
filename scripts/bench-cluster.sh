#!/usr/bin/env bash
# Benchmarks switchboard as a cluster over Redis (issue 10) against one node,
# in the same run: the relay workload of bench/native (nativebench relay,
# native protocol; see its README) on three setups, interleaved (each
# repetition starting one setup further on), REPS times:
#
#   no-redis       one node, no --redis (as without a cluster)
#   redis-1node    one node with --redis; both sides of every pair on it
#   redis-2nodes   two nodes with --redis; side A of every pair on the first,
#                  side B on the second, so every relayed message crosses
#                  from one node to the other through Redis
#   old-no-redis   (only with OLD_BIN) another binary, e.g. the pre-cluster
#                  commit, one node, no --redis: the same-run before/after
#   old-redis-2nodes  (only with OLD_BIN, if it has --redis; not by default)
#                  redis-2nodes with OLD_BIN: before/after a cluster change
#
# Redis (redis-server from PATH) is started once, on a free 127.0.0.1 port,
# with no persistence (--save "" --appendonly no); every run uses a cluster
# name of its own. Every run gets fresh nodes on free 127.0.0.1 ports. The
# relay round trip is A -> B -> A as in the one-node relay. Reported per
# setup: msgs/s, RTT p50/p99, the nodes' CPU (both nodes summed), Redis's CPU
# (/proc/PID/stat) and what went through it in the measured window (PUBLISH
# calls, commands, bytes: INFO stats commandstats), cross-node messages/s.
# Raw lines are appended to bench/native/results/cluster-YYYYMMDD.jsonl;
# the medians of this run, and per-repetition ratios to no-redis, are
# printed as Markdown tables at the end, with the machine's load average.
#
#   scripts/bench-cluster.sh                             # REPS=3
#   REPS=5 SWITCHBOARD_BIN=/tmp/sb scripts/bench-cluster.sh
#   REPS=3 SWITCHBOARD_BIN=/tmp/sb OLD_BIN=/tmp/sb-old scripts/bench-cluster.sh
#   REPS=1 RELAY_SECONDS=3 WARMUP=1 SWITCHBOARD_BIN=/tmp/sb scripts/bench-cluster.sh   # quick check
#
# Options:
#   -s, --setups LIST      comma-separated, from: no-redis redis-1node redis-2nodes
#                          old-no-redis old-redis-2nodes [SETUPS, default the
#                          first three, and old-no-redis when OLD_BIN is set]
#   -h, --help             this text
#
# Environment (whole numbers unless said):
#   REPS=3                 repetitions (at most 20)
#   RELAY_PAIRS=100 RELAY_WINDOW=8 RELAY_SIZE=1000 RELAY_SECONDS=10
#   WARMUP=2               seconds of unrecorded relay on the same fresh nodes
#                          before the measured one (0 = none)
#   COOLDOWN=1             seconds of rest after each run
#   QUIET_CPU=30 QUIET_WAIT=30   before each run, wait (at most QUIET_WAIT s)
#                          until other processes use under QUIET_CPU % of one CPU
#   SWITCHBOARD_BIN=PATH   switchboard binary (default: build target/release/switchboard;
#                          the fat-LTO build takes minutes)
#   OLD_BIN=PATH           a second binary measured as old-no-redis
#   SB_ARGS="..."          extra flags for every node, e.g. "--rate 0"
#   REDIS_SERVER=redis-server   the Redis binary
#   OUT=FILE               results file to append to
#
# Needs redis-server (Debian package redis-server) and curl (to see the two
# nodes count each other on /metrics before the pairs connect).
# Bounded: every nativebench run has a timeout, every node is stopped by its
# PID (SIGTERM, then SIGKILL after 5 s), Redis is stopped by its PID at exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

die() { echo "bench-cluster: $*" >&2; exit 1; }
note() { echo "bench-cluster: $*" >&2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

SETUPS=${SETUPS:-}
while (($#)); do
    case $1 in
        -s | --setups) SETUPS=${2:?--setups needs a list}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
if [[ -z $SETUPS ]]; then
    SETUPS="no-redis redis-1node redis-2nodes"
    [[ -n ${OLD_BIN:-} ]] && SETUPS+=" old-no-redis"
fi
read -r -a SETUP_LIST <<<"${SETUPS//,/ }"
for s in "${SETUP_LIST[@]}"; do
    case $s in
        no-redis | redis-1node | redis-2nodes) ;;
        old-no-redis | old-redis-2nodes) [[ -n ${OLD_BIN:-} ]] || die "$s needs OLD_BIN" ;;
        *) die "unknown setup '$s' (no-redis, redis-1node, redis-2nodes, old-no-redis, old-redis-2nodes)" ;;
    esac
done

REPS=${REPS:-3}
RELAY_PAIRS=${RELAY_PAIRS:-100}
RELAY_WINDOW=${RELAY_WINDOW:-8}
RELAY_SIZE=${RELAY_SIZE:-1000}
RELAY_SECONDS=${RELAY_SECONDS:-10}
WARMUP=${WARMUP:-2}
COOLDOWN=${COOLDOWN:-1}
QUIET_CPU=${QUIET_CPU:-30}
QUIET_WAIT=${QUIET_WAIT:-30}
for v in REPS RELAY_PAIRS RELAY_WINDOW RELAY_SIZE RELAY_SECONDS WARMUP COOLDOWN QUIET_CPU QUIET_WAIT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((REPS > 0 && REPS <= 20)) || die "REPS must be 1..20"
((RELAY_SECONDS > 0 && RELAY_SECONDS <= 120)) || die "RELAY_SECONDS must be 1..120"
((WARMUP <= 60)) || die "WARMUP must be at most 60"
REDIS_SERVER=${REDIS_SERVER:-redis-server}
command -v "$REDIS_SERVER" >/dev/null || die "no $REDIS_SERVER (Debian: apt-get install redis-server)"

# ---------------------------------------------------------------- builds
note "building bench/native (nativebench)"
cargo build --release --quiet --manifest-path bench/native/Cargo.toml
NB=$ROOT/bench/native/target/release/nativebench

abs_bin() { # path -> absolute path of an executable
    [[ -x $1 ]] || die "$1 is not an executable"
    echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
}
if [[ -n ${SWITCHBOARD_BIN:-} ]]; then
    SB=$(abs_bin "$SWITCHBOARD_BIN")
else
    note "building switchboard (release; set SWITCHBOARD_BIN to skip)"
    cargo build --release --quiet --bin switchboard
    SB=$ROOT/target/release/switchboard
fi
OLD=""
[[ -n ${OLD_BIN:-} ]] && OLD=$(abs_bin "$OLD_BIN")

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------- processes
SPID=""
STOP_WAIT=50
# shellcheck source=scripts/lib/server.sh
source scripts/lib/server.sh # (the script runs from the repo root)
NODE_PIDS=()
REDIS_PID=""

stop_nodes() {
    local p
    for p in "${NODE_PIDS[@]}"; do
        SPID=$p
        stop_server
    done
    NODE_PIDS=()
}
stop_redis() {
    [[ -n $REDIS_PID ]] || return 0
    SPID=$REDIS_PID
    REDIS_PID=""
    stop_server
}
trap 'stop_nodes; stop_redis' EXIT
trap 'note interrupted; exit 130' INT TERM

RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)-$$
RESULTS=$ROOT/bench/native/results
OUT=${OUT:-$RESULTS/cluster-$(date -u +%Y%m%d).jsonl}
LOGDIR=$RESULTS/logs/$RUN_ID
mkdir -p "$LOGDIR" "$(dirname "$OUT")"
SB_VERSION=$("$SB" --version 2>/dev/null | head -n 1 || echo unknown)
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

REDIS_PORT=$("$NB" free-port)
# exec in place: $! is redis-server's own PID.
"$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --protected-mode yes --daemonize no --logfile "$LOGDIR/redis.log" </dev/null >/dev/null 2>&1 &
REDIS_PID=$!
"$NB" wait-port --port "$REDIS_PORT" --timeout 10 || die "redis-server did not start (log: $LOGDIR/redis.log)"
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
REDIS_VERSION=$("$REDIS_SERVER" --version | head -n 1)

start_node() { # bin port log [redis-url cluster] -> appends to NODE_PIDS
    local bin=$1 port=$2 log=$3 pid
    local -a extra cluster=()
    read -r -a extra <<<"${SB_ARGS:-}"
    [[ $# -ge 5 ]] && cluster=(--redis "$4" --cluster "$5")
    env -u RUST_LOG "$bin" --listen "127.0.0.1:$port" --max-connections 1000000 "${cluster[@]}" "${extra[@]}" \
        </dev/null >"$log" 2>&1 &
    pid=$!
    NODE_PIDS+=("$pid")
    "$NB" wait-port --port "$port" --timeout 30 2>>"$log" && kill -0 "$pid" 2>/dev/null
}

# ---------------------------------------------------------------- runs
# busy_ticks and wait_quiet: scripts/lib/server.sh.
# Waits (at most 10 s) until the nodes on these ports each count N nodes
# (switchboard_cluster_nodes on /metrics); says so if they do not.
wait_nodes() { # port... n
    local n=${*: -1} port v i
    for port in "${@:1:$#-1}"; do
        for ((i = 0; i < 100; i++)); do
            v=$(curl -s --max-time 1 "http://127.0.0.1:$port/metrics" | awk '$1 == "switchboard_cluster_nodes" { print $2 }')
            [[ $v == "$n" ]] && break
            sleep 0.1
        done
        [[ $v == "$n" ]] || note "node on port $port counts '${v:-?}' nodes, not $n, after 10 s"
    done
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

run_one() { # rep setup
    local rep=$1 setup=$2 p1 p2 log1 log2 elog line rc=0 cluster bin=$SB load
    local -a target=()
    p1=$("$NB" free-port)
    log1=$LOGDIR/r$rep-$setup.node1.log
    log2=$LOGDIR/r$rep-$setup.node2.log
    elog=$LOGDIR/r$rep-$setup.client.log
    cluster=bench-$RUN_ID-r$rep-$setup
    wait_quiet
    load=$(loadavg)
    printf 'bench-cluster: [rep %d/%d] %-13s load %s  ' "$rep" "$REPS" "$setup" "$load" >&2
    local ok=1
    case $setup in
        no-redis) start_node "$SB" "$p1" "$log1" || ok=0 ;;
        old-no-redis) bin=$OLD; start_node "$OLD" "$p1" "$log1" || ok=0 ;;
        redis-1node) start_node "$SB" "$p1" "$log1" "$REDIS_URL" "$cluster" || ok=0 ;;
        redis-2nodes | old-redis-2nodes)
            [[ $setup == old-* ]] && bin=$OLD
            p2=$("$NB" free-port)
            start_node "$bin" "$p1" "$log1" "$REDIS_URL" "$cluster" || ok=0
            ((ok)) && { start_node "$bin" "$p2" "$log2" "$REDIS_URL" "$cluster" || ok=0; }
            # Pairs connect once both nodes count each other (at most 10 s).
            ((ok)) && wait_nodes "$p1" "$p2" 2
            target=(--port2 "$p2" --server-pid2 "${NODE_PIDS[1]:-0}")
            ;;
    esac
    case $setup in redis-* | old-redis-*) target+=(--redis-port "$REDIS_PORT" --redis-pid "$REDIS_PID") ;; esac
    if ((!ok)); then
        echo "did not start (logs: $log1 $log2)" >&2
        stop_nodes
        line="{\"workload\":\"relay\",\"proto\":\"native\",\"tags\":{\"server\":\"$setup\",\"rep\":\"$rep\",\"run\":\"$RUN_ID\"},"
        line+="\"error\":\"a node did not start (logs: $log1 $log2)\"}"
        echo "$line" >>"$OUT"
        return
    fi
    line=$(timeout -k 10 $((RELAY_SECONDS + WARMUP + 180)) "$NB" relay --pairs "$RELAY_PAIRS" --window "$RELAY_WINDOW" \
        --size "$RELAY_SIZE" --seconds "$RELAY_SECONDS" --warmup "$WARMUP" \
        --proto native --port "$p1" --server-pid "${NODE_PIDS[0]}" "${target[@]}" \
        --tag "server=$setup" --tag "rep=$rep" --tag "run=$RUN_ID" --tag "rev=$REV" \
        --tag "switchboard=$("$bin" --version 2>/dev/null | head -n 1)" --tag "bin=$bin" \
        --tag "loadavg=$load" --tag "redis=$REDIS_VERSION" 2>"$elog") || rc=$?
    local p
    for p in "${NODE_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || note "a node exited during the run (logs: $log1 $log2)"
    done
    stop_nodes
    if [[ -z $line ]]; then
        echo "FAILED (exit $rc, see $elog)" >&2
        line="{\"workload\":\"relay\",\"proto\":\"native\",\"tags\":{\"server\":\"$setup\",\"rep\":\"$rep\",\"run\":\"$RUN_ID\"},"
        line+="\"error\":\"nativebench exited $rc with no result (124 = timeout; stderr: $elog)\"}"
    else
        tail -n 1 "$elog" >&2
    fi
    echo "$line" >>"$OUT"
    sleep "$COOLDOWN"
}

START_LOAD=$(loadavg)
START_TIME=$(date -u +%FT%TZ)
note "run $RUN_ID: $REPS rep(s) x [${SETUP_LIST[*]}]; switchboard: $SB${OLD:+; old: $OLD}; $REDIS_VERSION on port $REDIS_PORT (pid $REDIS_PID)"
# Each repetition starts one setup further on, so that no setup always
# follows the same one (other processes' load drifts over a run).
for ((rep = 1; rep <= REPS; rep++)); do
    for ((i = 0; i < ${#SETUP_LIST[@]}; i++)); do
        run_one "$rep" "${SETUP_LIST[(i + rep - 1) % ${#SETUP_LIST[@]}]}"
    done
done
END_LOAD=$(loadavg)

echo
echo "## Cluster relay: pairs split across two nodes vs one node, run $RUN_ID ($REPS rep(s))"
echo
echo "relay: $RELAY_PAIRS pairs, window $RELAY_WINDOW, ${RELAY_SIZE}-byte payload, ${RELAY_SECONDS} s after ${WARMUP} s warm-up;" \
    "switchboard $SB_VERSION (rev $REV)${SB_ARGS:+ with $SB_ARGS}; $REDIS_VERSION. $(nproc) CPUs, load, nodes and Redis sharing them;" \
    "load average (1/5/15 min) $START_LOAD at $START_TIME, $END_LOAD at the end."
"$NB" report --input "$OUT" --run "$RUN_ID" --baseline no-redis
echo
note "raw lines: $OUT (logs: $LOGDIR)"
