# slurm_lib.sh — a private one-node Slurm cluster for the distributed
# tests (sourced, not run; after tests/faults/lib.sh, whose $T, at_exit
# and skip_all it uses).
#
# slurm_start brings up munged, slurmctld and slurmd (Debian's packages:
# slurmctld, slurmd, slurm-client, munge) with every file in $T/slurm:
# its own munge key and socket, its own slurm.conf (exported as
# SLURM_CONF, so sbatch/squeue/scontrol talk to this cluster only), its
# own ports, state, spool, logs and pid files, and a unique ClusterName.
# Several of these clusters can run at once on one machine (ctest -j, other
# checkouts) and none touches /etc/slurm or a system-wide munged.  The
# settings follow ../shared/design/slurm-local.md: no cgroups
# (proctrack/linuxproc, task/none), no accounting, the scheduler without
# its batch delays, kill_invalid_depend, and 8 CPUs declared on a 2-core
# machine (SlurmdParameters=config_overrides) so that several parts run
# at once.
#
# Needs root (slurmd must run as root) and the packages; otherwise
# slurm_require exits 77 with the reason.  slurm_stop runs at exit (and
# on TERM/INT/HUP); a watchdog stops the daemons too if this shell is
# killed outright, so no daemon outlives its test.
#
#   slurm_require               skip (77) unless root and the programs exist
#   slurm_start                 start the cluster; wait until the node is idle
#   slurm_stop                  cancel every job, stop the daemons (pid files)
#   slurm_submit ARGS...        sbatch --parsable ARGS...; prints the job id
#   slurm_wait ID...            poll squeue until none of the jobs is queued
#                               or running (SLURM_WAIT_S, default 120 s)
#   slurm_states ID             the JobState of a job, or of each task of
#                               an array, one per line, sorted
#   slurm_all_completed ID...   every job (every task) is COMPLETED

SLURM_WAIT_S=${SLURM_WAIT_S:-120}

slurm_require() {
    if [ "$(id -u)" != 0 ]; then
        skip_all "the Slurm tests need root (slurmd runs as root); scripts/test.sh runs them as root in CI"
    fi
    local p missing=""
    for p in munged slurmctld slurmd sbatch squeue scontrol scancel sinfo runuser; do
        command -v "$p" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$p" >/dev/null 2>&1 ||
            missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        skip_all "Slurm is not installed (missing:$missing); apt-get install slurmctld slurmd slurm-client munge (scripts/test.sh does as root)"
    fi
    id munge >/dev/null 2>&1 || skip_all "no user 'munge' (the munge package creates it)"
    id slurm >/dev/null 2>&1 || skip_all "no user 'slurm' (the slurm packages create it)"
}

# _slurm_free_port: a TCP port on 127.0.0.1 nobody listens on now.
_slurm_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_slurm_log_tail() {
    local f
    for f in "$SLURM_DIR"/log/*.log; do
        [ -f "$f" ] || continue
        echo "--- $f (last lines)"
        tail -n 8 "$f"
    done
}

slurm_start() {
    export PATH="$PATH:/usr/sbin"
    SLURM_DIR="$T/slurm"
    mkdir -p "$SLURM_DIR" || return 1
    chmod 755 "$T" "$SLURM_DIR"
    # munged and slurmctld run as their own users: when they cannot reach
    # $T (a TMPDIR under a private directory), the cluster lives in /tmp.
    if ! runuser -u munge -- test -x "$SLURM_DIR" 2>/dev/null ||
        ! runuser -u slurm -- test -x "$SLURM_DIR" 2>/dev/null; then
        SLURM_DIR=$(mktemp -d /tmp/timber-slurm-XXXXXX) || return 1
        chmod 755 "$SLURM_DIR"
        SLURM_OWN_DIR=$SLURM_DIR
    fi
    local S=$SLURM_DIR
    mkdir -p "$S"/etc "$S"/munge "$S"/log "$S"/run "$S"/state "$S"/spool || return 1
    # munge: its own key, socket, pid, seed and log, owned by munge.
    if command -v mungekey >/dev/null 2>&1 || [ -x /usr/sbin/mungekey ]; then
        mungekey -c -b 1024 -k "$S/munge/munge.key" >/dev/null 2>&1
    fi
    [ -s "$S/munge/munge.key" ] || head -c 128 /dev/urandom >"$S/munge/munge.key"
    chown -R munge:munge "$S/munge"
    chmod 755 "$S/munge"
    chmod 400 "$S/munge/munge.key"
    chown slurm:slurm "$S/state" "$S/log" "$S/run"
    SLURM_MUNGE_SOCKET="$S/munge/munge.socket"
    SLURM_CLUSTER="tb$$"
    # The daemons' pid files: read by slurm_stop and the watchdog.
    SLURM_PIDFILES="$S/run/slurmd.pid $S/run/slurmctld.pid $S/munge/munged.pid"
    at_exit slurm_stop
    trap 'exit 143' TERM
    trap 'exit 130' INT
    trap 'exit 129' HUP
    runuser -u munge -- munged --socket="$SLURM_MUNGE_SOCKET" \
        --key-file="$S/munge/munge.key" --pid-file="$S/munge/munged.pid" \
        --seed-file="$S/munge/munged.seed" --log-file="$S/munge/munged.log" \
        --num-threads=2 || {
        echo "munged did not start: $(tail -n 5 "$S/munge/munged.log" 2>/dev/null)"
        return 1
    }
    local ctld_port slurmd_port
    ctld_port=$(_slurm_free_port) && slurmd_port=$(_slurm_free_port) || return 1
    while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(_slurm_free_port); done
    cat >"$S/etc/slurm.conf" <<CONF
# A one-node test cluster (tests/dist/slurm_lib.sh); nothing outside $S.
ClusterName=$SLURM_CLUSTER
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SLURM_MUNGE_SOCKET
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
DependencyParameters=kill_invalid_depend
MailProg=/bin/true
ReturnToService=2
KillWait=2
InactiveLimit=0
MinJobAge=600
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/run/slurmctld.pid
SlurmdPidFile=$S/run/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs=8 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    chmod 644 "$S/etc/slurm.conf"
    export SLURM_CONF="$S/etc/slurm.conf"
    slurmctld -f "$SLURM_CONF" -i || {
        echo "slurmctld did not start"
        _slurm_log_tail
        return 1
    }
    slurmd -f "$SLURM_CONF" -N localhost || {
        echo "slurmd did not start"
        _slurm_log_tail
        return 1
    }
    # The watchdog: if this shell dies without running its traps
    # (SIGKILL), stop the daemons anyway.
    local me=$$
    (
        trap '' TERM INT HUP
        exec </dev/null >/dev/null 2>&1
        while kill -0 "$me" 2>/dev/null; do sleep 1; done
        _slurm_kill_daemons
        [ "${TIMBER_TEST_KEEP:-0}" = 1 ] || rm -rf "$T" ${SLURM_OWN_DIR:+"$SLURM_OWN_DIR"}
    ) &
    SLURM_WATCHDOG=$!
    disown "$SLURM_WATCHDOG" 2>/dev/null
    local i state=""
    for i in $(seq 1 150); do
        state=$(sinfo -h -o %T 2>/dev/null | head -n 1)
        [ "$state" = idle ] && return 0
        sleep 0.2
    done
    echo "the Slurm node did not become idle in 30 s (state '$state')"
    _slurm_log_tail
    return 1
}

# _slurm_kill_daemons: TERM, then KILL, the daemons named by the pid files;
# then any process still carrying this cluster's name (a job's leftovers).
_slurm_kill_daemons() {
    local f pid pids="" i
    for f in $SLURM_PIDFILES; do
        [ -s "$f" ] || continue
        pid=$(cat "$f" 2>/dev/null)
        case "$pid" in '' | *[!0-9]*) continue ;; esac
        kill -TERM "$pid" 2>/dev/null && pids="$pids $pid"
    done
    for i in $(seq 1 50); do
        local alive=""
        for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
        [ -z "$alive" ] && break
        sleep 0.1
    done
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null; done
    # No stale pid for a later call to kill.
    for f in $SLURM_PIDFILES; do rm -f "$f"; done
    # Job processes (and their slurmstepd) of this cluster only: they
    # carry SLURM_CLUSTER_NAME=<ours> in their environment.
    [ -n "${SLURM_CLUSTER:-}" ] || return 0
    for f in /proc/[0-9]*/environ; do
        pid=${f#/proc/}
        pid=${pid%/environ}
        [ "$pid" = "$$" ] && continue
        if { tr '\0' '\n' <"$f"; } 2>/dev/null | grep -qxF "SLURM_CLUSTER_NAME=$SLURM_CLUSTER"; then
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    return 0
}

slurm_stop() {
    [ -n "${SLURM_DIR:-}" ] || return 0
    if [ -n "${SLURM_CONF:-}" ] && [ -s "$SLURM_DIR/run/slurmctld.pid" ]; then
        scancel --quiet --user=root 2>/dev/null
        local i
        for i in $(seq 1 50); do
            [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
    # The watchdog ignores TERM (it must outlive a TERMed test shell).
    [ -n "${SLURM_WATCHDOG:-}" ] && kill -KILL "$SLURM_WATCHDOG" 2>/dev/null
    SLURM_WATCHDOG=""
    _slurm_kill_daemons
    if [ -n "${SLURM_OWN_DIR:-}" ] && [ "${TIMBER_TEST_KEEP:-0}" != 1 ]; then
        rm -rf "$SLURM_OWN_DIR"
    fi
    SLURM_DIR=""
    return 0
}

# slurm_submit ARGS...: the id of the job sbatch submitted (no cluster
# suffix); fails when sbatch does.
slurm_submit() {
    local id
    id=$(sbatch --parsable "$@") || return 1
    printf '%s\n' "${id%%;*}"
}

# slurm_wait ID...: until squeue lists none of the jobs (or of their
# tasks); 1 after SLURM_WAIT_S seconds.
slurm_wait() {
    local ids
    ids=$(printf '%s,' "$@")
    ids=${ids%,}
    local deadline=$((SECONDS + SLURM_WAIT_S))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if [ -z "$(squeue -h -o %i -j "$ids" 2>/dev/null)" ]; then
            # squeue answers empty for an unknown id too: make sure the
            # controller still knows the jobs (they were submitted).
            return 0
        fi
        sleep 0.3
    done
    echo "jobs $ids still queued after ${SLURM_WAIT_S} s:"
    squeue -j "$ids" 2>&1 | head -n 20
    return 1
}

# slurm_states ID: the state of the job, one line per array task, sorted
# ("COMPLETED", "FAILED", "CANCELLED", ...).
slurm_states() {
    scontrol -o show job "$1" 2>/dev/null |
        sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort
}

# slurm_all_completed ID...: every job named, and every task of it, ended
# COMPLETED (and there was at least one).
slurm_all_completed() {
    local id s
    for id in "$@"; do
        s=$(slurm_states "$id")
        [ -n "$s" ] || return 1
        [ -z "$(printf '%s\n' "$s" | grep -vx COMPLETED)" ] || return 1
    done
    return 0
}
