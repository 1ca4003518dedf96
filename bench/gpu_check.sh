#!/usr/bin/env bash
# Device check (a borrowed GPU machine): `make bench` sized for a GPU first (the speed yardstick), then
# the GPU tests, a phased GPU run with eval/predict/export, a compiled run and a 2-job sweep.
# Everything lands in $OUT as it goes, so a run cut short by the device's time limit keeps the bench.
# Expects hydra-core/omegaconf/antlr wheels in .whl/ when the machine lacks them (the export check uses TorchScript).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}; mkdir -p "$OUT"
if ! python3 -c "import hydra" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*-none-any.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1 FTCLI_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, torchvision, lightning; print('torch', torch.__version__, 'tv', torchvision.__version__, 'lightning', lightning.__version__, 'bf16', torch.cuda.is_bf16_supported())" | tee -a "$OUT/gpu.txt"
# issue 14's GPU yardstick: resnet50, 224 px, batch 64, bf16 (precision=auto), channels_last; the digits
# rows (every digit, ~14 steps an epoch) and the JPEG rows (4,000 real-size JPEGs, ~50 training steps an epoch)
timeout 560 python3 -m bench --model resnet50 --image-size 224 --batch-size 64 --epochs 3 --repeats 2 \
  --jpeg-images 4000 --jpeg-model resnet50 --jpeg-weights null --jpeg-batch-size 64 --jpeg-epochs 3 --no-advise \
  --out "$OUT/bench-gpu.json" > "$OUT/bench.txt" 2>&1; echo "bench exit $?" | tee -a "$OUT/bench.txt"
tail -30 "$OUT/bench.txt"
python3 -m pytest -q tests/unit/test_gpu.py -p no:cacheprovider 2>&1 | tail -15 | tee "$OUT/pytest.txt"
work=$(mktemp -d)
run() { local name=$1; shift; ( cd "$work" && timeout 240 python3 -m ftcli.cli "$@" ) > "$OUT/$name.txt" 2>&1; echo "$name exit $?" | tee -a "$OUT/$name.txt"; }
run train train model.weights=null data=shapes data.per_class=100 strategy=gradual trainer.max_epochs=6 \
  print_config=false trainer.enable_progress_bar=false hydra.run.dir="$work/run"
grep -h "phase\|precision\|bf16\|16-mixed\|test accuracy\|images/s" "$OUT/train.txt" | head -12
ckpt="$work/run/checkpoints/best.ckpt"
run eval eval ckpt="$ckpt"; tail -4 "$OUT/eval.txt"
run predict predict ckpt="$ckpt" inputs="$HOME/.cache/ftcli/shapes" topk=2 show=3; tail -3 "$OUT/predict.txt"
run export export ckpt="$ckpt" format=torchscript; tail -3 "$OUT/export.txt"
run compile train model.weights=null data=shapes data.per_class=50 strategy=lp_ft strategy.probe_epochs=1 \
  trainer.max_epochs=2 compile=true print_config=false trainer.enable_progress_bar=false hydra.run.dir="$work/compiled"
grep -h "phase\|test accuracy\|exit" "$OUT/compile.txt" | head -5
run sweep train -m model=resnet50 model.weights=null strategy=feature_extraction,full data=shapes data.per_class=100 \
  trainer.max_epochs=2 print_config=false trainer.enable_progress_bar=false hydra.sweep.dir="$work/sweep"
tail -8 "$OUT/sweep.txt"
cp "$work/run/summary.json" "$OUT/summary.json" 2>/dev/null
