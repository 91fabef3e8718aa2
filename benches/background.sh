# Shared by benches/echo_veth.sh and apps/echo/run-demo.sh (sourced, not
# run; tested by benches/background_test.sh): a server started in the
# background, its output in a log, and the wait for the line that says it
# is ready.
#
# The log is emptied by the caller, before the fork. Left to the
# background job (`cmd >"$log" &`), the emptying happens whenever the job
# first runs, and a wait that reads the log before that finds the previous
# server's "ready" line: the caller goes on while the new server has not
# even started. That is how echo_veth.sh's client sent its first datagram
# to a server that was not there yet (about one start in 25).

# start_logged LOG CMD [ARG…]: empties LOG, then runs CMD in the
# background with its output (stdout and stderr) appended to LOG; sets
# `started_pid` to its process id.
start_logged() {
    local log=$1
    shift
    : >"$log"
    "$@" >>"$log" 2>&1 &
    started_pid=$!
}

# wait_for_line PID LOG TEXT [TRIES]: waits until LOG has a line starting
# with TEXT, looking every 50 ms, at most TRIES times (200 by default, 10 s).
# Fails when process PID ends first or the time runs out.
wait_for_line() {
    local pid=$1 log=$2 text=$3 tries=${4:-200}
    for _ in $(seq "$tries"); do
        grep -q "^$text" "$log" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    # The line may have come just before the process ended.
    grep -q "^$text" "$log"
}
