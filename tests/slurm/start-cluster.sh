#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine (as root) for the `slurm` tests: munged, MariaDB + slurmdbd
# (job accounting: submitit reads job states with sacct), slurmctld and slurmd with a generated slurm.conf;
# node = this host, CPUs = $(nproc). State and logs go to a temporary folder.
# Needs Debian's packages: apt-get install -y slurm-wlm munge slurmdbd mariadb-server
#
#   eval "$(tests/slurm/start-cluster.sh)"     # prints `export SLURM_CONF=...`
#   tests/slurm/stop-cluster.sh                # stops the daemons by PID (reads $SLURM_CONF)
set -euo pipefail
for tool in munged mariadbd mariadb-install-db slurmdbd slurmctld slurmd sinfo sacctmgr; do
  command -v "$tool" >/dev/null || {
    echo "start-cluster.sh: $tool not found (apt-get install -y slurm-wlm munge slurmdbd mariadb-server)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "start-cluster.sh: run as root" >&2; exit 1; }

DIR=${1:-$(mktemp -d /tmp/disentbench-slurm.XXXXXX)}
mkdir -p "$DIR"/{state,spool,munge,mysql}
chmod 700 "$DIR" "$DIR/munge"
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
DB_PORT=${DB_PORT:-3307}
log() { echo "start-cluster.sh: $*" >&2; }
wait_for() {  # seconds command...: retry the command every 0.5 s
  local n=$(($1 * 2)); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  log "timed out waiting for: $* (logs in $DIR)"; exit 1
}

dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$DIR/munge/munge.key"
# munged on its default socket (/run/munge/munge.socket.2): Slurm's commands talk to slurmdbd through it
mkdir -p /run/munge
munged --force --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed"

mariadb-install-db --user=root --datadir="$DIR/mysql" --auth-root-authentication-method=socket >"$DIR/mysql-install.log" 2>&1
mariadbd --user=root --datadir="$DIR/mysql" --socket="$DIR/mysql.sock" --pid-file="$DIR/mysqld.pid" \
  --bind-address=127.0.0.1 --port="$DB_PORT" --log-error="$DIR/mysqld.log" --innodb-buffer-pool-size=64M 2>>"$DIR/mysqld.log" &
wait_for 30 mariadb --socket="$DIR/mysql.sock" -e "select 1"
mariadb --socket="$DIR/mysql.sock" -e "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"

cat > "$DIR/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=${SLURMDBD_PORT:-6819}
SlurmUser=root
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
CONF
chmod 600 "$DIR/slurmdbd.conf"

cat > "$DIR/slurm.conf" <<CONF
ClusterName=disentbench
SlurmctldHost=$HOST
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
# a job's tasks take the niceness of the sbatch that submitted them (a test run under nice -n 19 gets niced jobs)
PropagatePrioProcess=1
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=${SLURMDBD_PORT:-6819}
JobAcctGatherType=jobacct_gather/none
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$DIR/slurm.conf"
slurmdbd
wait_for 30 timeout 5 sacctmgr -i -n list cluster
sacctmgr -i add cluster disentbench >/dev/null
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
wait_for 30 bash -c "sinfo -h -o %T | grep -qx idle"
echo "export SLURM_CONF=$SLURM_CONF"
