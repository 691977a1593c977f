#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, to try `launcher=submitit_slurm` and to run tests/test_slurm.py.
#
#   scripts/slurm_local.sh up       # install (Debian/Ubuntu apt, as root) if needed, configure, start; idempotent
#   scripts/slurm_local.sh status   # daemons, partition, queue
#   scripts/slurm_local.sh down     # stop slurmd, slurmctld, slurmdbd, MariaDB and munge; idempotent
#
# One node (this host, all its CPUs) in partition `debug`; slurmctld, slurmd and slurmdbd run as root. Accounting
# is on (slurmdbd over a local MariaDB) because submitit asks `sacct` for the state of its jobs: without it, every
# poll prints "Bypassing sacct error". Config and state live under $LFCS_SLURM_HOME (default /var/lib/lfcs-slurm);
# /etc/slurm/slurm.conf and /etc/slurm/slurmdbd.conf are written by this script and refused if someone else's.
set -euo pipefail

HOME_DIR=${LFCS_SLURM_HOME:-/var/lib/lfcs-slurm}
CLUSTER=lfcs
PARTITION=debug
MARK="# written by lfcs scripts/slurm_local.sh"
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server)
NODE=$(hostname -s)

say() { echo "slurm_local: $*"; }
die() { echo "slurm_local: error: $*" >&2; exit 1; }
running() { pgrep -x "$1" >/dev/null; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every half second
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$what did not come up within the time allowed (logs: $HOME_DIR/log/)"
        sleep 0.5
    done
}

install_packages() {
    local missing=()
    for cmd in slurmctld slurmd sbatch slurmdbd munged mariadbd; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    ((${#missing[@]} == 0)) && return
    [[ $EUID -eq 0 ]] || die "missing ${missing[*]}; run as root to install ${PACKAGES[*]} with apt"
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install Slurm (with slurmdbd) yourself"
    say "installing ${PACKAGES[*]} (about two minutes)"
    mkdir -p "$HOME_DIR/log"
    local log=$HOME_DIR/log/apt.log
    # A fresh machine may have no package lists yet; a failed update is not fatal while older lists can install.
    if ! { apt-get update -q || true; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${PACKAGES[@]}"; } >"$log" 2>&1; then
        die "apt-get could not install ${PACKAGES[*]}: $(grep -E '^(E|W):' "$log" | tail -n 1) (log: $log)"
    fi
}

write_owned() {  # write_owned PATH MODE: stdin to PATH, unless PATH exists and was not written by this script
    local path=$1 mode=$2 text
    text=$(cat)
    if [[ -e $path ]] && ! grep -qF "$MARK" "$path"; then
        die "$path exists and was not written by this script; move it away to use the local cluster"
    fi
    mkdir -p "$(dirname "$path")"
    printf '%s\n%s\n' "$MARK" "$text" >"$path"
    chmod "$mode" "$path"
}

write_configs() {
    local cpus mem_mb
    cpus=$(nproc)
    mem_mb=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024))  # leave 1 GB to the system
    mkdir -p "$HOME_DIR"/{ctld,spool,log}
    write_owned "$CONF" 644 <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# No cgroups in containers and small VMs: track processes by parent id, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobRequeue=1
# Seconds between SIGTERM and SIGKILL when a job is cancelled, requeued or runs out of time.
KillWait=30
StateSaveLocation=$HOME_DIR/ctld
SlurmdSpoolDir=$HOME_DIR/spool
SlurmctldPidFile=$HOME_DIR/slurmctld.pid
SlurmdPidFile=$HOME_DIR/slurmd.pid
SlurmctldLogFile=$HOME_DIR/log/slurmctld.log
SlurmdLogFile=$HOME_DIR/log/slurmd.log
# Accounting through slurmdbd, so that sacct (submitit's status query) answers.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
NodeName=$NODE CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    # MariaDB lets the local root in through its unix socket, so no password is stored anywhere.
    write_owned "$DBD_CONF" 600 <<EOF
DbdHost=localhost
SlurmUser=root
AuthType=auth/munge
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
PidFile=$HOME_DIR/slurmdbd.pid
LogFile=$HOME_DIR/log/slurmdbd.log
EOF
}

node_ready() { sinfo -h -n "$NODE" -o %t | grep -qE '^(idle|mix|alloc)'; }

up() {
    if running slurmctld && running slurmd && running slurmdbd && node_ready 2>/dev/null; then
        say "already up: cluster $CLUSTER, node $NODE, partition $PARTITION"
        return
    fi
    install_packages
    [[ $EUID -eq 0 ]] || die "run as root: the daemons are started as root"
    write_configs
    running munged || service munge start >/dev/null
    running mariadbd || service mariadb start >/dev/null
    wait_for 60 MariaDB mysql -e 'SELECT 1'
    mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db"
    running slurmdbd || slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
    if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    fi
    running slurmctld || slurmctld
    wait_for 60 slurmctld scontrol ping
    running slurmd || slurmd
    wait_for 60 "node $NODE" sinfo -h
    if ! node_ready; then  # a node that was stopped with jobs on it comes back down: resume it
        sleep 2
        node_ready || scontrol update nodename="$NODE" state=resume 2>/dev/null || true
    fi
    wait_for 60 "node $NODE (idle)" node_ready
    say "up: cluster $CLUSTER, node $NODE ($(nproc) CPUs), partition $PARTITION; logs in $HOME_DIR/log/"
}

stop_pidfile() {  # stop_pidfile NAME: SIGTERM the daemon NAME and wait until it is gone
    local name=$1 pid
    running "$name" || return 0
    pid=$(cat "$HOME_DIR/$name.pid" 2>/dev/null || pgrep -x "$name")
    kill $pid 2>/dev/null || true
    for _ in $(seq 60); do running "$name" || return 0; sleep 0.5; done
    die "$name ($pid) did not stop"
}

down() {
    stop_pidfile slurmd
    stop_pidfile slurmctld
    stop_pidfile slurmdbd
    if running mariadbd; then service mariadb stop >/dev/null; fi
    if running munged; then service munge stop >/dev/null; fi
    say "down"
}

status() {
    local name
    for name in munged mariadbd slurmdbd slurmctld slurmd; do
        if running "$name"; then echo "$name: running"; else echo "$name: stopped"; fi
    done
    if running slurmctld; then
        sinfo
        squeue
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) die "usage: $0 up|down|status" ;;
esac
