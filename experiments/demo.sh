#!/usr/bin/env bash
# `make demo`: the main job on embedded defaults. Generates audio, builds its manifest, starts a
# local Ray head node, submits the debug training job with `ray job submit` (2 workers), then
# runs the debug Tune sweep the same way, then stops the head. Results land in results/ and the
# Aim repo in .aim/ (see the printed command).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" RAY_USAGE_STATS_ENABLED=0
DATA=data/demo

if [ ! -f "$DATA/manifest.parquet" ]; then
  echo "== generating 3 minutes of varied audio into $DATA/audio"
  python -m raycodec.data.synth "$DATA/audio" --minutes 3 --seed 0
  echo "== scanning it into $DATA/manifest.parquet"
  python -m raycodec.data.manifest "$DATA/audio" --out "$DATA/manifest.parquet"
fi

echo "== starting a local Ray head node"
ray start --head --num-cpus=4 --dashboard-host=127.0.0.1 --disable-usage-stats >/dev/null
trap 'echo "== stopping the Ray head node"; ray stop --force >/dev/null 2>&1 || true' EXIT

echo "== ray job submit -- python experiments/train.py --config debug (2 workers)"
# Ray 2.60 heads use token auth: clients need RAY_AUTH_MODE=token.
RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
  python experiments/train.py --config debug \
  "dataset.manifest=$PWD/$DATA/manifest.parquet" "ray.storage_path=$PWD/results" \
  "tracking.repo=$PWD"

# --resume: a second `make demo` reports the finished sweep instead of refusing to overwrite it.
echo "== ray job submit -- python experiments/tune.py --sweep debug (4 trials, ASHA)"
RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
  python experiments/tune.py --sweep debug --resume \
  "dataset.manifest=$PWD/$DATA/manifest.parquet" "ray.storage_path=$PWD/results" \
  "tracking.repo=$PWD"
