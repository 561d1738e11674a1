#!/usr/bin/env bash
# One short check of the --device cuda paths on a GPU machine, from the repository root:
#   OUT=/some/folder bash benchmarks/gpu_check.sh
# It needs medgan_aug's dependencies importable (pip install -e ., or wheels on PYTHONPATH) and pytest-xdist.
set -o pipefail
: "${OUT:?set OUT to an output folder}"
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch, monai, ignite, medmnist, sys; print(sys.version.split()[0], torch.__version__, monai.__version__, ignite.__version__, torch.cuda.get_device_name())"
echo "== 1. GAN on cuda (quick-study size: 400 iterations, base 32, batch 64, conditional)"
start=$EPOCHREALTIME
python3 -m medgan_aug train --sample nih1000 --conditional --iterations 400 --batch-size 64 --base-channels 32 \
  --checkpoint-every 200 --sample-every 200 --device cuda --out $OUT/gan --no-progress 2>&1 | tail -3
awk -v a=$start -v b=$EPOCHREALTIME "BEGIN{print \"train seconds:\", b-a}"
cp $OUT/gan/samples/iter_00000400.png $OUT/gan_cuda_iter400.png 2>/dev/null
echo "== 3. classify on cuda: ResNet-18, real+synthetic@0.5 from that GAN"
start=$EPOCHREALTIME
python3 -m medgan_aug classify --sample nih1000 --fraction 1.0 --condition real+synthetic@0.5 --run $OUT/gan \
  --classifier resnet18 --iterations 200 --device cuda --out $OUT/cls --no-progress 2>&1 | tail -3
awk -v a=$start -v b=$EPOCHREALTIME "BEGIN{print \"classify seconds:\", b-a}"
python3 -c "import json; m = json.load(open('$OUT/cls/metrics.json')); print({k: v for k, v in m.items() if not isinstance(v, (dict, list))})"
echo "== 4. SyntheticDataset on cuda vs cpu, same generator file"
python3 - <<PY
import torch
from medgan_aug import SyntheticDataset
a = SyntheticDataset.from_run("$OUT/gan", 512, device="cuda")
b = SyntheticDataset.from_run("$OUT/gan", 512, device="cpu")
idx = range(0, 512, 37)
print("max |cuda - cpu| pixel", max(float((a[i]["image"] - b[i]["image"]).abs().max()) for i in idx),
      "labels equal", all(torch.equal(a[i]["label"], b[i]["label"]) for i in idx),
      "items on", a[0]["image"].device)
PY
echo "== 5. the test suite on this machine's Python/torch (xdist, 8 workers)"
timeout 330 python3 -m pytest -q -p no:cacheprovider -n 8 2>&1 | tail -25
