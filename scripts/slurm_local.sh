#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for tests and for trying profiles/slurm locally.
#
#   scripts/slurm_local.sh start DIR   # install (if missing) and start munged, slurmctld, slurmd
#   export SLURM_CONF=DIR/slurm.conf   # what `start` prints last: sbatch, squeue... use this cluster
#   scripts/slurm_local.sh stop DIR    # cancel its jobs, stop the daemons it started (by their pids)
#
# One cluster per machine (fixed ports 6817/6818 and the /etc/slurm link below): `start` refuses
# while another one runs. Everything SLURM keeps lives under DIR (slurm.conf, gres.conf, state,
# spool, logs, pid files), with two exceptions. /etc/slurm/slurm.conf becomes a symlink to DIR/slurm.conf while the cluster
# runs: inside a job, the executor plugin's srun drops SLURM_CONF and reads the default path (as on
# a real cluster); an existing regular file there is never replaced (start fails instead). munged
# uses its standard socket (/run/munge) because it refuses sockets and logs in directories it does
# not own; a munged that already answers is reused and left running.
# Needs root (the daemons run as root; apt-get installs slurm-wlm and munge).
#
# Choices, each from measurements on a 2-core Debian 12 box (notes: shared/notes/slurm-local.md):
# - No accounting (no slurmdbd): jobs are followed with squeue, so MinJobAge=300 keeps finished
#   jobs visible long enough for the executor plugin (it wants >= 3x its first status delay).
#   sacct answers "Slurm accounting storage is disabled", so the plugin's efficiency report
#   cannot run here (tests/test_slurm.py checks the error it logs instead).
# - proctrack/linuxproc + task/none: no cgroup setup needed in containers; memory is scheduled,
#   not enforced.
# - Placeholder GPUs (gres gpu backed by /dev/null-like device files; SLURM_LOCAL_GPUS, default 2): jobs that ask
#   for the `gpu` resource (sbatch --gpus=N) are scheduled as on a GPU cluster and run on the CPU.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop|status DIR" >&2
    exit 2
}
[[ $# -eq 2 ]] || usage
action=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
CONF=$DIR/slurm.conf
PIDS=$DIR/pids
GPUS=${SLURM_LOCAL_GPUS:-2}
NODE=$(hostname -s)
export SLURM_CONF=$CONF

log() { echo "slurm_local: $*" >&2; }

alive() { # alive NAME: the daemon whose pid we recorded runs (and is still that daemon)
    local f=$PIDS/$1.pid
    [[ -s $f && $(cat "/proc/$(cat "$f")/comm" 2>/dev/null) == "$1" ]]
}

wait_for() { # wait_for SECONDS COMMAND...: retry COMMAND every 0.2 s
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.2
    done
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    [[ $(id -u) == 0 ]] || { log "slurm-wlm and munge are missing and we are not root"; exit 1; }
    log "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh CI image may have no package lists yet: update only when the first try fails.
    if ! apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; then
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
    fi
}

munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_ok; then
        return # a munged (ours from an earlier start, or the system's) already answers
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        mungekey --create --keyfile=/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    wait_for 10 test -s /run/munge/munged.pid || { log "munged did not start"; exit 1; }
    cp /run/munge/munged.pid "$PIDS/munged.pid"
    wait_for 10 munge_ok || { log "munged does not answer"; exit 1; }
}

write_config() {
    local layout mem_kb real_mb
    # The CPU layout as slurmd sees it (first line of `slurmd -C`), with RealMemory at ~90% of
    # MemTotal: slurmd drains a node whose configured memory exceeds what it finds.
    layout=$(slurmd -C | head -n1 | sed -E 's/^NodeName=[^ ]+ //; s/ RealMemory=[0-9]+//')
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    real_mb=$((mem_kb * 9 / 10 / 1024))
    local gres_node="" gres_types=""
    if ((GPUS > 0)); then
        gres_types="GresTypes=gpu"
        gres_node="Gres=gpu:$GPUS"
        # slurmd drops GPUs without device files: character devices equal to /dev/null stand in.
        mkdir -p "$DIR/dev"
        : >"$DIR/gres.conf"
        for ((i = 0; i < GPUS; i++)); do
            [[ -e $DIR/dev/gpu$i ]] || mknod "$DIR/dev/gpu$i" c 1 3 2>/dev/null || : >"$DIR/dev/gpu$i"
            echo "NodeName=$NODE Name=gpu File=$DIR/dev/gpu$i" >>"$DIR/gres.conf"
        done
    else
        : >"$DIR/gres.conf"
    fi
    cat >"$CONF" <<EOF
# Written by scripts/slurm_local.sh: a one-node cluster; everything under $DIR.
ClusterName=local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
# No slurmdbd: the executor plugin follows jobs with squeue, which needs finished jobs kept 300 s.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
ReturnToService=2
# A cancelled job's processes get SIGTERM, then SIGKILL after KillWait seconds.
KillWait=5
InactiveLimit=0
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$gres_types
NodeName=$NODE NodeAddr=127.0.0.1 $layout RealMemory=$real_mb $gres_node State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

no_running_jobs() { [[ -z $(squeue -h -t running,completing -o %i 2>/dev/null) ]]; }

ETC_CONF=/etc/slurm/slurm.conf

link_config() { # the default config path points at ours (see the header)
    if [[ -e $ETC_CONF && ! -L $ETC_CONF ]]; then
        log "$ETC_CONF is a real file (a site config?): not replacing it; remove it to go on"
        exit 1
    fi
    mkdir -p "$(dirname "$ETC_CONF")"
    ln -sfn "$CONF" "$ETC_CONF"
}

unlink_config() {
    if [[ -L $ETC_CONF && $(readlink "$ETC_CONF") == "$CONF" ]]; then
        rm -f "$ETC_CONF"
    fi
}

# Up and responding (no `*`), not drained or down; jobs may run (start on a running cluster).
node_idle() { [[ $(sinfo -h -N -o %T 2>/dev/null) =~ ^(idle|mixed|allocated|completing)$ ]]; }

start() {
    install_packages
    mkdir -p "$DIR"/{state,spool,run,log} "$PIDS"
    start_munge
    [[ -s $CONF ]] || write_config
    if ! alive slurmctld; then
        port_free 6817 || { log "port 6817 in use: another cluster runs here (one per machine)"; exit 1; }
        slurmctld -f "$CONF"
        wait_for 15 test -s "$DIR/run/slurmctld.pid" || { log "slurmctld did not start"; exit 1; }
        cp "$DIR/run/slurmctld.pid" "$PIDS/slurmctld.pid"
    fi
    wait_for 15 scontrol ping || { log "slurmctld does not answer; see $DIR/log"; exit 1; }
    # another cluster on the same ports would answer the ping while ours has exited
    alive slurmctld || { log "slurmctld exited (port 6817 taken?); see $DIR/log"; exit 1; }
    if ! alive slurmd; then
        port_free 6818 || { log "port 6818 in use: another slurmd runs here (one per machine)"; exit 1; }
        slurmd -f "$CONF"
        wait_for 15 test -s "$DIR/run/slurmd.pid" || { log "slurmd did not start"; exit 1; }
        cp "$DIR/run/slurmd.pid" "$PIDS/slurmd.pid"
    fi
    if ! wait_for 30 node_idle; then
        # e.g. a node left DOWN/DRAINED in the saved state of an earlier start
        scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
        wait_for 15 node_idle || { log "node not idle: $(sinfo -h -N -o '%T %E')"; exit 1; }
    fi
    link_config
    echo "export SLURM_CONF=$CONF" >"$DIR/env.sh"
    echo "export SLURM_CONF=$CONF"
}

stop_pid() { # stop_pid NAME: SIGTERM the recorded pid, SIGKILL after 10 s
    local f=$PIDS/$1.pid pid
    [[ -s $f ]] || return 0
    pid=$(cat "$f")
    if alive "$1" && kill "$pid" 2>/dev/null; then
        local deadline=$((SECONDS + 10))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

stop() {
    if alive slurmctld; then
        # Jobs of this cluster only (SLURM_CONF points at it); their steps end with slurmd's help.
        scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
        wait_for 10 no_running_jobs || true
    fi
    stop_pid slurmd
    stop_pid slurmctld
    stop_pid munged # only if this script started it
    unlink_config
}

status() {
    alive slurmctld && alive slurmd && node_idle && sinfo
}

case $action in
start) start ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
