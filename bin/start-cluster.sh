#!/usr/bin/env bash
# Starts a Freshet cluster: one JobManager on this host and one TaskManager
# per line of conf/workers (localhost lines run here, other hosts through
# ssh with the same installation path). Settings come from
# $FRESHET_CONF_DIR/freshet.yaml (default: conf/ next to this script's
# directory); process output and pid files go to $FRESHET_LOG_DIR (default
# log/). The freshet program is $FRESHET_BIN (default build/bin/freshet).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONF_DIR="${FRESHET_CONF_DIR:-$ROOT/conf}"
LOG_DIR="${FRESHET_LOG_DIR:-$ROOT/log}"
BIN="${FRESHET_BIN:-$ROOT/build/bin/freshet}"
CONF="$CONF_DIR/freshet.yaml"

[ -x "$BIN" ] || { echo "start-cluster: no freshet program at $BIN (set FRESHET_BIN)" >&2; exit 1; }
[ -f "$CONF" ] || { echo "start-cluster: no configuration at $CONF" >&2; exit 1; }
mkdir -p "$LOG_DIR"
if [ -f "$LOG_DIR/jobmanager.pid" ] && kill -0 "$(cat "$LOG_DIR/jobmanager.pid")" 2>/dev/null; then
  echo "start-cluster: a JobManager is already running (pid $(cat "$LOG_DIR/jobmanager.pid"))" >&2
  exit 1
fi

nohup "$BIN" jobmanager -c "$CONF" -D "env.log.dir=$LOG_DIR" >"$LOG_DIR/jobmanager.out" 2>&1 &
echo $! >"$LOG_DIR/jobmanager.pid"

# The JobManager prints its endpoints once it listens; TaskManagers are
# told the RPC port it really bound (the configured one may be 0).
rpc=""
for _ in $(seq 1 300); do
  rpc="$(sed -n 's/^RPC endpoint: //p' "$LOG_DIR/jobmanager.out" | head -1)"
  [ -n "$rpc" ] && break
  if ! kill -0 "$(cat "$LOG_DIR/jobmanager.pid")" 2>/dev/null; then
    echo "start-cluster: the JobManager exited:" >&2
    cat "$LOG_DIR/jobmanager.out" >&2
    exit 1
  fi
  sleep 0.1
done
[ -n "$rpc" ] || { echo "start-cluster: the JobManager did not come up (see $LOG_DIR/jobmanager.out)" >&2; exit 1; }
rest="$(sed -n 's/^REST endpoint: //p' "$LOG_DIR/jobmanager.out" | head -1)"
rpc_port="${rpc##*:}"
echo "JobManager: REST $rest, RPC $rpc"

i=0
workers="$CONF_DIR/workers"
[ -f "$workers" ] || workers=/dev/null
while read -r host _; do
  case "$host" in ''|'#'*) continue ;; esac
  i=$((i + 1))
  id="taskmanager-$host-$i"
  args=(taskmanager -c "$CONF" -D "jobmanager.rpc.port=$rpc_port" -D "taskmanager.resource-id=$id"
        -D "env.log.dir=$LOG_DIR")
  if [ "$host" = localhost ] || [ "$host" = 127.0.0.1 ]; then
    nohup "$BIN" "${args[@]}" >"$LOG_DIR/$id.out" 2>&1 &
    echo $! >"$LOG_DIR/$id.pid"
  else
    ssh -n "$host" "nohup '$BIN' ${args[*]} >'$LOG_DIR/$id.out' 2>&1 & echo \$! >'$LOG_DIR/$id.pid'"
  fi
  echo "TaskManager $id on $host"
done <"$workers"
