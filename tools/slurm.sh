#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for the cluster tests and for trying `--shard slurm` by hand.
#
#   tools/slurm.sh install   Debian's slurm-wlm (22.05) and munge, if missing (apt-get; needs root)
#   tools/slurm.sh start     install, configure and start munged, slurmctld and slurmd; wait until the node is idle;
#                            prints `export SLURM_CONF=…` (eval it to use sinfo/sbatch/squeue/scancel)
#   tools/slurm.sh stop      cancel every job, stop the three daemons this script started, remove the state directory
#   tools/slurm.sh status    running or not; sinfo and squeue when running
#   tools/slurm.sh env       the `export SLURM_CONF=…` line
#
# Everything lives in one state directory ($BRAINMAP_SLURM_DIR, default /tmp/brainmap-slurm): config, munge key and
# socket, spool, state, logs, pid files. Nothing is written to /etc, no system service is touched, so it coexists
# with a system munge or Slurm. The daemons run as root (SlurmUser=root): this is a test cluster on a CI machine.
# slurmctld and slurmd listen on loopback ports found free at start (from 16817 up). Accounting: none (sacct would
# need slurmdbd and MariaDB: a database server for a test cluster); finished jobs stay visible to
# `scontrol show job` for MinJobAge (1 h) and every job's end (state, exit code) is appended to
# $BRAINMAP_SLURM_DIR/log/jobcomp.log (jobcomp/filetxt).
set -euo pipefail
cd "$(dirname "$0")/.."
S="${BRAINMAP_SLURM_DIR:-/tmp/brainmap-slurm}"
CONF="$S/slurm.conf"
NODE=brainmap0

say() { echo "slurm.sh: $*" >&2; }
die() { say "$*"; exit 1; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
     && command -v munged >/dev/null; then return; fi
  [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null || die "installing slurm-wlm and munge needs root (or sudo)"
  tools/setup-system.sh slurm-wlm munge
}

# A TCP port nobody listens on (from /proc/net/tcp{,6}: state 0A = LISTEN), starting at $1, not in $2.
free_port() {
  local p=$1 used
  used=$(awk 'NR > 1 && $4 == "0A" { split($2, a, ":"); print strtonum("0x" a[2]) }' /proc/net/tcp /proc/net/tcp6 2>/dev/null || true)
  while grep -qx "$p" <<< "$used" || [ "$p" = "${2:-}" ]; do p=$((p + 1)); done
  echo "$p"
}

close_inherited_fds() {
  local fd
  for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    [ "$fd" -gt 2 ] && [ "$fd" != 255 ] && eval "exec $fd>&-" 2>/dev/null || true
  done
}

# Whether daemon $1 (munged, slurmctld, slurmd) of this state directory runs: its pid file names a live process
# of that name (a stale pid file from a crashed run may name a reused pid).
alive() { [ -f "$S/$1.pid" ] && [ "$(cat "/proc/$(cat "$S/$1.pid")/comm" 2>/dev/null)" = "$1" ]; }

running() { alive munged && alive slurmctld && alive slurmd; }

write_config() {
  local ctld_port slurmd_port mem host
  ctld_port=$(free_port 16817)
  slurmd_port=$(free_port $((ctld_port + 1)) "$ctld_port")
  # The node's real memory less 5% (slurmd drains a node that reports less than configured).
  mem=$(awk '/^MemTotal:/ { print int($2 / 1024 * 0.95) }' /proc/meminfo)
  host=$(hostname -s)
  cat > "$CONF" <<EOF
# Written by tools/slurm.sh: a one-node test cluster on loopback.
ClusterName=brainmap
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge/munge.socket
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$S/log/jobcomp.log
MinJobAge=3600
KillWait=5
InactiveLimit=0
NodeName=$NODE NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  install
  if running; then say "already running ($S)"; echo "export SLURM_CONF=$CONF"; return; fi
  stop_daemons
  rm -rf "$S"
  mkdir -p "$S"/{munge,state,spool,log}
  chmod 700 "$S/munge"
  write_config
  export SLURM_CONF="$CONF"
  # munge: our own key and socket; --force because the daemon runs as root.
  dd if=/dev/urandom of="$S/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$S/munge/munge.key"
  # The daemons must not keep the caller's file descriptors: a pipe or a process-exit socket held open by them
  # would make whoever ran `tools/slurm.sh start` wait for EOF until the cluster stops.
  close_inherited_fds
  munged --force --key-file="$S/munge/munge.key" --socket="$S/munge/munge.socket" --pid-file="$S/munged.pid" \
    --log-file="$S/log/munged.log" --seed-file="$S/munge/munged.seed" </dev/null >>"$S/log/daemons.out" 2>&1 || die "munged did not start: $(tail -5 "$S/log/munged.log" 2>/dev/null)"
  slurmctld -f "$CONF" </dev/null >>"$S/log/daemons.out" 2>&1 || die "slurmctld did not start: $(tail -20 "$S/log/slurmctld.log" 2>/dev/null)"
  slurmd -f "$CONF" -N "$NODE" </dev/null >>"$S/log/daemons.out" 2>&1 || die "slurmd did not start: $(tail -20 "$S/log/slurmd.log" 2>/dev/null)"
  local state=""
  for _ in $(seq 1 300); do
    state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 0.1
  done
  if [ "$state" != idle ]; then
    say "the node is not idle after 30 s (state: '${state:-no answer}'); last log lines:"
    tail -n 15 "$S/log/slurmctld.log" "$S/log/slurmd.log" >&2 || true
    exit 1
  fi
  say "running: slurmctld on 127.0.0.1:$(sed -n 's/^SlurmctldPort=//p' "$CONF"), slurmd on 127.0.0.1:$(sed -n 's/^SlurmdPort=//p' "$CONF"), node $NODE idle ($S)"
  echo "export SLURM_CONF=$CONF"
}

# Stops the daemons whose pid files are in the state directory (only those: never by name). All at once: each
# takes ~2 s to notice SIGTERM.
stop_daemons() {
  local f pids=()
  for f in slurmd slurmctld munged; do
    alive "$f" && pids+=("$(cat "$S/$f.pid")")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill "${pids[@]}" 2>/dev/null || true
  local left
  for _ in $(seq 1 100); do
    left=0
    for f in "${pids[@]}"; do kill -0 "$f" 2>/dev/null && left=1; done
    [ $left -eq 0 ] && return 0
    sleep 0.1
  done
  for f in "${pids[@]}"; do kill -9 "$f" 2>/dev/null || true; done
}

stop() {
  if running; then
    export SLURM_CONF="$CONF"
    # Jobs first, so no batch script outlives its cluster.
    scancel --full --state=PENDING,RUNNING,SUSPENDED --user=root 2>/dev/null || true
    for _ in $(seq 1 100); do [ -z "$(squeue -h -t R,CG -o %A 2>/dev/null)" ] && break; sleep 0.1; done
  fi
  stop_daemons
  rm -rf "$S"
  say "stopped"
}

status() {
  if running; then
    export SLURM_CONF="$CONF"
    echo "running ($S)"; sinfo; squeue
    # Finished jobs (no accounting database here: jobcomp/filetxt keeps the end of every job).
    if [ -s "$S/log/jobcomp.log" ]; then
      echo "last finished jobs:"
      tail -n 10 "$S/log/jobcomp.log" | grep -oE "(^| )(JobId|ArrayJobId|ArrayTaskId|Name|JobState|ExitCode)=[^ ]*" | sed "s/^ //" \
        | awk -F= '$1 == "JobId" && line { print line; line = "" } { line = line "  " $0 } END { if (line) print line }'
    fi
  else
    echo "not running"; return 1
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) die "usage: tools/slurm.sh install|start|stop|status|env" ;;
esac
