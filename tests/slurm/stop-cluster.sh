#!/usr/bin/env bash
# Stop the cluster of start-cluster.sh (slurmd, slurmctld, slurmdbd, MariaDB, munged) by the PIDs in its folder;
# the folder stays (logs). Usage: tests/slurm/stop-cluster.sh [SLURM_CONF]  (default $SLURM_CONF)
set -euo pipefail
CONF=${1:-${SLURM_CONF:?pass the slurm.conf of start-cluster.sh, or set SLURM_CONF}}
DIR=$(dirname "$CONF")
for pidfile in slurmd.pid slurmctld.pid slurmdbd.pid mysqld.pid munge/munged.pid; do
  [ -f "$DIR/$pidfile" ] || continue
  pid=$(cat "$DIR/$pidfile")
  kill "$pid" 2>/dev/null || continue
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
done
echo "stopped the cluster of $CONF (logs in $DIR)" >&2
