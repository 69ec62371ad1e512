#!/usr/bin/env bash
# Aim on the Ray head node (cluster launcher: head_start_ray_commands), started once:
#   aim server  0.0.0.0:$AIM_SERVER_PORT  training jobs log to tracking.repo=aim://<head-ip>:53800
#                                         (reachable inside the cluster's network only)
#   aim up      127.0.0.1:$AIM_UI_PORT    the UI; from a laptop: ray attach CONFIG -p 43800
# Both serve one repo. Re-running (a second `ray up`) leaves running servers alone.
set -euo pipefail
repo=${AIM_REPO:-$HOME/aim}
server_port=${AIM_SERVER_PORT:-53800}
ui_port=${AIM_UI_PORT:-43800}
run_dir=${AIM_RUN_DIR:-/tmp/raycodec-aim}  # pid and log files: /tmp, so a new container starts clean

mkdir -p "$repo" "$run_dir"
aim init --repo "$repo" -s >/dev/null  # before any run opens it: concurrent first opens race

start() {  # NAME COMMAND...: run COMMAND in its own session unless NAME's process is alive
  local name=$1 pidfile="$run_dir/$1.pid"
  shift
  if [[ -f $pidfile ]] && kill -0 "$(<"$pidfile")" 2>/dev/null; then
    echo "$name already running (pid $(<"$pidfile"))"
    return
  fi
  setsid nohup "$@" >"$run_dir/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  echo "$name started (pid $!, log $run_dir/$name.log)"
}

start aim-server aim server --repo "$repo" -h 0.0.0.0 -p "$server_port"
start aim-ui aim up --repo "$repo" -h 127.0.0.1 -p "$ui_port"
