#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, with real accounting (slurmdbd on MariaDB),
# for running recsearch's jobs through torchx's slurm scheduler (`--scheduler slurm`).
#
#   tools/slurm_local.sh start [--install]   start munge, MariaDB, slurmdbd, slurmctld and
#                                            slurmd; wait until `sinfo` shows the node idle
#   tools/slurm_local.sh stop                stop them all (jobs still running are cancelled)
#   tools/slurm_local.sh status              say what runs; exit 0 when the node is usable
#
# Idempotent: `start` on a running cluster only checks it; `stop` on a stopped one does nothing.
# Needs root and Debian's packages slurm-wlm, slurmdbd, munge and mariadb-server (`--install`
# installs them with apt-get). torchx describes jobs with `sacct`, which needs accounting:
# that is why slurmdbd and a database run too, not only the controller and the node daemon.
# The node is this machine: its cores and memory (less 1 GiB for the daemons) as the node's
# resources; one partition, `local`, the default. Logs and state live under $SLURM_LOCAL_DIR
# (default /var/lib/recsearch-slurm); the config is written to /etc/slurm/, where every
# Slurm command looks.
set -euo pipefail

STATE=${SLURM_LOCAL_DIR:-/var/lib/recsearch-slurm}
CONF=/etc/slurm
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)
CLUSTER=recsearch
PARTITION=local
DB_PASSWORD=recsearch-local  # loopback only: the database listens on no network port

die() { echo "slurm_local: $*" >&2; exit 2; }
say() { echo "slurm_local: $*" >&2; }

wait_for() {  # wait_for SECONDS WHAT COMMAND...: poll COMMAND until it succeeds
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq "$((seconds * 2))"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    die "$what did not come up in ${seconds}s; see the logs in $STATE/log"
}

running() { pgrep -x "$1" >/dev/null 2>&1; }

check_can_run() {
    [[ $(id -u) == 0 ]] || die "needs root (it starts system daemons); run it as root or with sudo"
    mkdir -p "$STATE/log"
    local missing=()
    for cmd in munged mariadbd slurmdbd slurmctld slurmd sinfo sacct; do
        command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] || missing+=("$cmd")
    done
    if ((${#missing[@]})); then
        if [[ ${INSTALL:-0} == 1 ]]; then
            command -v apt-get >/dev/null || die "no apt-get here: install ${PACKAGES[*]} by hand"
            say "installing ${PACKAGES[*]} (apt-get)"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${PACKAGES[@]}" >"$STATE/log/apt.log" 2>&1 ||
                { apt-get update -q >/dev/null 2>&1 &&
                  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${PACKAGES[@]}" >"$STATE/log/apt.log" 2>&1; } ||
                die "apt-get could not install ${PACKAGES[*]}: see $STATE/log/apt.log"
        else
            die "missing ${missing[*]}: install Debian's ${PACKAGES[*]} (or pass --install)"
        fi
    fi
}

write_config() {
    local node cpus mem
    node=$(hostname -s)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
    mkdir -p "$CONF" "$STATE"/{ctld,slurmd,log}
    cat >"$CONF/slurm.conf" <<EOF
# written by recsearch tools/slurm_local.sh: one node, this machine
ClusterName=$CLUSTER
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# no cgroups needed: containers and sandboxes often have none to give
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
# a job killed or preempted is not requeued by Slurm: the job pool decides about retries
JobRequeue=0
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$CONF/slurmdbd.conf" <<EOF
# written by recsearch tools/slurm_local.sh
AuthType=auth/munge
DbdHost=$node
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$CONF/slurmdbd.conf"
}

start_munge() {
    running munged && return 0
    [[ -s /etc/munge/munge.key ]] || { mungekey --create --force >/dev/null 2>&1 || die "could not create /etc/munge/munge.key"; }
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged >/dev/null 2>&1 || /usr/sbin/munged --force
    wait_for 20 munge munge -n
}

start_database() {
    if ! running mariadbd; then
        mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
        [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql >"$STATE/log/mariadb-install.log" 2>&1
        # no TCP port: slurmdbd reaches it through the socket
        (mariadbd --user=mysql --skip-networking >"$STATE/log/mariadb.log" 2>&1 &)
        wait_for 60 MariaDB mysqladmin ping
    fi
    mysql <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
}

node_idle() { [[ $(sinfo -h -N -o %t 2>/dev/null | head -1) =~ ^(idle|mix|alloc)$ ]]; }

start() {
    check_can_run
    if running slurmctld && running slurmd && running slurmdbd && node_idle; then
        say "already running: $(sinfo -h -o '%P %D node(s) %t' | head -1)"
        return 0
    fi
    write_config
    start_munge
    start_database
    running slurmdbd || /usr/sbin/slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
    sacctmgr -i -n list cluster format=cluster | grep -qw "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
    running slurmctld || /usr/sbin/slurmctld
    wait_for 60 slurmctld scontrol ping
    running slurmd || /usr/sbin/slurmd
    wait_for 60 "the node ($(hostname -s))" node_idle
    # a node left DOWN or DRAINED by an earlier stop is brought back
    scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    say "up: partition $PARTITION, $(nproc) CPUs on $(hostname -s); stop with: $0 stop"
}

stop_daemon() {  # stop_daemon NAME PIDFILE
    local pid
    running "$1" || return 0
    pid=$(cat "$2" 2>/dev/null || pgrep -x "$1" | head -1)
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 40); do running "$1" || return 0; sleep 0.5; done
    pkill -9 -x "$1" || true
}

stop() {
    [[ $(id -u) == 0 ]] || die "needs root (it stops system daemons); run it as root or with sudo"
    if running slurmctld; then scancel --full --user=root >/dev/null 2>&1 || true; fi
    stop_daemon slurmd "$STATE/slurmd.pid"
    stop_daemon slurmctld "$STATE/slurmctld.pid"
    stop_daemon slurmdbd "$STATE/slurmdbd.pid"
    running mariadbd && { mysqladmin shutdown >/dev/null 2>&1 || pkill -x mariadbd || true; }
    stop_daemon munged /run/munge/munged.pid
    say "stopped"
}

status() {
    local d up=0
    for d in munged mariadbd slurmdbd slurmctld slurmd; do
        if running "$d"; then echo "$d: running"; else echo "$d: stopped"; up=1; fi
    done
    if ((up == 0)) && node_idle; then sinfo; else return 1; fi
}

INSTALL=0
cmd=${1:-}
shift || true
for arg in "$@"; do
    case $arg in
        --install) INSTALL=1 ;;
        *) die "unknown option $arg (see the header of $0)" ;;
    esac
done
case $cmd in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: $0 start [--install] | stop | status" ;;
esac
