#!/usr/bin/env bash
# Device script, second ablation round: ADA + AC-GAN on all four sets, PneumoniaMNIST 5% and the missing 100% runs.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 MEDGAN_SHARED_DATA=$PWD/.gpu/data OMP_NUM_THREADS=2
mkdir -p $OUT/abl && cp experiments/results/recipe_ablation/calibration.json $OUT/abl/
A="python3 experiments/recipe_ablation.py train --out /tmp/abl --calibration $OUT/abl/calibration.json --device cuda --long-datasets --deadline 150"
{
date
start=$EPOCHREALTIME
$A --workers 4 --datasets nih1000_100 nih1000_25 pneumonia_100 pneumonia_5 --recipes ada_acgan &
$A --workers 3 --datasets pneumonia_5 --recipes default ada acgan &
$A --workers 2 --datasets pneumonia_100 --recipes ada acgan &
wait
awk -v a=$start -v b=$EPOCHREALTIME "BEGIN{print \"train seconds:\", b-a}"
start=$EPOCHREALTIME
python3 experiments/recipe_ablation.py evaluate --runs /tmp/abl --out $OUT/abl --device cuda --workers 4 --threads 3 \
  --deadline 90 --recipes ada_acgan default ada acgan
awk -v a=$start -v b=$EPOCHREALTIME "BEGIN{print \"evaluate seconds:\", b-a}"
} 2>&1 | tee $OUT/log.txt
