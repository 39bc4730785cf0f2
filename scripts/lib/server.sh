# Sourced by the benchmark and soak scripts: stops the server they started.
# Needs SPID (its pid, emptied here) and a `note` function; STOP_WAIT is how
# many tenths of a second SIGTERM gets before SIGKILL (default 100).

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
