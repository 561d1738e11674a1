#!/usr/bin/env bash
# Device script: the recipe ablation (experiments/recipe_ablation.py) on one GPU; everything comes back under $OUT.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 MEDGAN_SHARED_DATA=$PWD/.gpu/data OMP_NUM_THREADS=2
mkdir -p $OUT/abl && cp experiments/results/recipe_ablation/calibration.json $OUT/abl/
{
nvidia-smi -L; date
python3 -c "import torch, monai, ignite, medmnist, sys; print(sys.version.split()[0], torch.__version__, monai.__version__, ignite.__version__)"
start=$EPOCHREALTIME
python3 experiments/recipe_ablation.py train --out /tmp/abl --calibration $OUT/abl/calibration.json --device cuda \
  --workers ${WORKERS:-8} --deadline ${TRAIN_DEADLINE:-300}
awk -v a=$start -v b=$EPOCHREALTIME "BEGIN{print \"train seconds:\", b-a}"
ls /tmp/abl/*/* | grep -c generator_
start=$EPOCHREALTIME
python3 experiments/recipe_ablation.py evaluate --runs /tmp/abl --out $OUT/abl --device cuda --workers 4 --threads 3 \
  --deadline ${EVAL_DEADLINE:-100}
awk -v a=$start -v b=$EPOCHREALTIME "BEGIN{print \"evaluate seconds:\", b-a}"
} 2>&1 | tee $OUT/log.txt
