# Sourced by the benchmark and soak scripts: stops the server they started,
# and waits for the machine to be quiet before a measurement. Needs SPID
# (the server's pid, emptied here) and a `note` function; STOP_WAIT is how
# many tenths of a second SIGTERM gets before SIGKILL (default 100);
# wait_quiet needs QUIET_CPU (percent of a CPU) and QUIET_WAIT (seconds).

stop_server() {
    [[ -n $SPID ]] || return 0
    local pid=$SPID i
    SPID=""
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < ${STOP_WAIT:-100}; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        note "server $pid ignored SIGTERM for $((${STOP_WAIT:-100} / 10)) s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# Busy CPU ticks of the whole machine (idle and iowait excluded).
busy_ticks() {
    local _cpu user nice system _idle _iowait irq softirq steal _rest
    read -r _cpu user nice system _idle _iowait irq softirq steal _rest </proc/stat
    echo $((user + nice + system + irq + softirq + steal))
}

# Nothing of ours runs between runs: wait until the rest of the machine is
# quiet, or QUIET_WAIT seconds have passed.
wait_quiet() {
    local b0 pct waited=0
    while :; do
        b0=$(busy_ticks)
        sleep 1
        pct=$((($(busy_ticks) - b0) * 100 / CLK_TCK))
        ((pct < QUIET_CPU)) && return 0
        if ((waited >= QUIET_WAIT)); then
            note "other processes still use ${pct}% of a CPU after ${waited} s; measuring anyway"
            return 0
        fi
        waited=$((waited + 1))
    done
}
