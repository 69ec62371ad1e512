#!/usr/bin/env bash
# The prepared GPU check of issue 15: GAN step fp32 / bf16 / bf16 + compile at batch 16 and 64,
# a 1-GPU train.py job of two short epochs, GPU compress/decompress of a 30 s file.
#   bash benchmarks/gpu_check.sh                        # one CUDA GPU, <= 8 minutes on an H100
#   bash benchmarks/gpu_check.sh --device cpu --quick   # the same code paths on CPU, tiny sizes
# Results: benchmarks/results/gpu_check.json. Everything it writes (Ray's session folder,
# compile caches, HOME-relative caches, temporary files) stays under benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
py=${PYTHON:-$root/.venv/bin/python}
[ -x "$py" ] || py=python3
scratch=${GPU_CHECK_WORK:-$root/benchmarks/results/gpu_check}   # tests point it elsewhere
# Short: Ray's socket paths under it must fit in 107 bytes.
export RAY_TMPDIR=${RAY_TMPDIR:-$root/benchmarks/results/r}
mkdir -p "$scratch/tmp" "$scratch/home" "$RAY_TMPDIR"
export TMPDIR=$scratch/tmp
export HOME=$scratch/home XDG_CACHE_HOME=$scratch/home/.cache MPLCONFIGDIR=$scratch/home/.mpl
export TORCHINDUCTOR_CACHE_DIR=$scratch/home/inductor TRITON_CACHE_DIR=$scratch/home/triton
export TORCH_HOME=$scratch/home/torch RAY_USAGE_STATS_ENABLED=0 PYTHONDONTWRITEBYTECODE=1
exec "$py" "$root/benchmarks/gpu_check.py" --work "$scratch" "$@"
