#!/usr/bin/env bash
# Stops what start-cluster.sh started on this host: TaskManagers first,
# then the JobManager (SIGTERM; each cancels its work and exits).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_DIR="${FRESHET_LOG_DIR:-$ROOT/log}"

stop() {
  local file="$1" pid
  pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "stop-cluster: $(basename "$file" .pid) (pid $pid) did not stop in 30 s; killing it" >&2
      kill -KILL "$pid"
    fi
  fi
  rm -f "$file"
}

shopt -s nullglob
for f in "$LOG_DIR"/taskmanager-*.pid; do stop "$f"; done
[ -f "$LOG_DIR/jobmanager.pid" ] && stop "$LOG_DIR/jobmanager.pid"
echo "Freshet cluster stopped"
