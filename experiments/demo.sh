#!/usr/bin/env bash
# `make demo`: fine-tune a small shipped codec on fresh data and show that it works.
#  1. writes fresh audio: espeak-ng speech (8 languages, many voices) + synthetic music/effects,
#     a training folder and a held-out folder (different seeds: no file is in both);
#  2. starts a local Ray head node and submits the training job with `ray job submit`
#     (2 workers): `small_24khz` fine-tuned with `continue_from` from the codec that
#     benchmarks/bench_quality.py trained (experiments/assets/small_24khz, EMA weights in fp16);
#  3. writes results/demo/report.md: every checkpoint and the starting weights measured on the
#     held-out clips next to Opus 6/12/24 kbps, silence and noise; table, learning-curve and
#     rate-distortion PNGs, reference/decoded WAVs, the `aim up` command;
#  4. runs the debug Tune sweep (4 trials, ASHA) the same way, then stops the head.
# Recipe: the shipped codec is still in its documented warm-up (adversarial and feature losses
# off, see bench_quality.py), and the demo continues it: reconstruction losses only (msspec + l1,
# balanced), no discriminator, at a tenth of its training rate with a ~100-step weight EMA (at the
# training rate, 1e-3, the fine-tune drifted further from the converged start: 6 kbps mel 0.766
# after 200 steps vs 0.751). DEMO_EPOCHS / DEMO_UPDATES size the run (default 8 x 25 steps);
# DEMO_DATA, DEMO_RESULTS, DEMO_AIM, DEMO_START move its folders; DEMO_SWEEP=0 skips the sweep.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" RAY_USAGE_STATS_ENABLED=0
DATA=${DEMO_DATA:-data/demo}
RESULTS=${DEMO_RESULTS:-$PWD/results}
START=${DEMO_START:-$PWD/experiments/assets/small_24khz}
EPOCHS=${DEMO_EPOCHS:-8}
UPDATES=${DEMO_UPDATES:-25}

if [ ! -f "$DATA/train.parquet" ] || [ ! -f "$DATA/heldout.parquet" ]; then
  echo "== writing fresh speech + music/effects into $DATA/train and $DATA/heldout"
  python -m raycodec.data.corpus "$DATA/train" --speech-files 32 --music-minutes 3 --seed 1
  python -m raycodec.data.corpus "$DATA/heldout" --speech-files 8 --music-minutes 1 --seed 2
  echo "== scanning them into $DATA/train.parquet and $DATA/heldout.parquet"
  python -m raycodec.data.manifest "$DATA/train" --out "$DATA/train.parquet"
  python -m raycodec.data.manifest "$DATA/heldout" --out "$DATA/heldout.parquet"
fi

echo "== starting a local Ray head node"
# Free ports and its own process group: the demo stops only its own head (`ray stop` would stop
# every Ray cluster on the machine).
read -r GCS DASH AGENT METRICS RUNTIME CLIENT < <(python -c '
import socket; s = [socket.socket() for _ in range(6)]
[x.bind(("127.0.0.1", 0)) for x in s]; print(*[x.getsockname()[1] for x in s])')
# Its workers are told where its dashboard is: Ray Train's placement-group cleaner would
# otherwise look for it by auto-detection, which fails while other Ray clusters run here.
RAY_API_SERVER_ADDRESS=http://127.0.0.1:$DASH \
  setsid ray start --head --block --num-cpus=4 --dashboard-host=127.0.0.1 --disable-usage-stats \
  --port="$GCS" --dashboard-port="$DASH" --dashboard-agent-listen-port="$AGENT" \
  --metrics-export-port="$METRICS" --runtime-env-agent-port="$RUNTIME" \
  --ray-client-server-port="$CLIENT" >/dev/null 2>&1 &
HEAD=$!
# `ray start` names its head in /tmp/ray/ray_current_cluster and only `ray stop` removes that:
# drop it too, else later `ray.init("auto")` calls on this machine look for a dead cluster.
stop_head() {
  echo "== stopping the Ray head node"
  kill -TERM -- "-$HEAD" 2>/dev/null || true
  wait "$HEAD" 2>/dev/null || true
  if grep -qs ":$GCS\$" /tmp/ray/ray_current_cluster; then rm -f /tmp/ray/ray_current_cluster; fi
}
trap stop_head EXIT
ADDRESS=http://127.0.0.1:$DASH
# Up when the dashboard and the node's dashboard agent answer (an HTTP error such as 401 is an
# answer): `ray job submit` fails with "No available agent" while the agent still starts.
for _ in $(seq 180); do
  python -c "
import urllib.error as e, urllib.request as u
for url in ('$ADDRESS', 'http://127.0.0.1:$AGENT/api/healthz'):
    try: u.urlopen(url, timeout=2)
    except e.HTTPError: pass" 2>/dev/null && break
  sleep 1
done

TRAIN_ARGS=(--config small_24khz "continue_from=$START" "continue_from_parts=[model,balancer]"
  losses.adv=0 losses.feat=0 "adversarial.adversaries=[]" optim.lr=1e-4 optim.ema.decay=0.99
  "optim.epochs=$EPOCHS" "optim.updates_per_epoch=$UPDATES" ray.num_workers=2
  "dataset.train.manifest=$(realpath "$DATA")/train.parquet"
  "dataset.valid.manifest=$(realpath "$DATA")/heldout.parquet" dataset.valid.num_samples=32
  checkpoint.keep_last=null tracking.experiment=demo tracking.audio_every=4
  "ray.storage_path=$RESULTS" "tracking.repo=${DEMO_AIM:-$PWD}")

echo "== ray job submit -- python experiments/train.py --config small_24khz continue_from=... (2 workers)"
# Ray 2.60 heads use token auth: clients need RAY_AUTH_MODE=token.
RAY_AUTH_MODE=token ray job submit --address "$ADDRESS" --working-dir . -- \
  python experiments/train.py "${TRAIN_ARGS[@]}"

echo "== measuring the run on held-out clips against Opus -> results/demo/report.md"
python experiments/demo_report.py "${TRAIN_ARGS[@]}" --heldout "$DATA/heldout" \
  --out "$RESULTS/demo" --start "$START"

[ "${DEMO_SWEEP:-1}" = 1 ] || exit 0
# --resume: a second `make demo` reports the finished sweep instead of refusing to overwrite it.
echo "== ray job submit -- python experiments/tune.py --sweep debug (4 trials, ASHA)"
RAY_AUTH_MODE=token ray job submit --address "$ADDRESS" --working-dir . -- \
  python experiments/tune.py --sweep debug --resume \
  "dataset.manifest=$(realpath "$DATA")/train.parquet" "ray.storage_path=$RESULTS" \
  "tracking.repo=${DEMO_AIM:-$PWD}"
