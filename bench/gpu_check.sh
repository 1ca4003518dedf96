#!/usr/bin/env bash
# Device check (a borrowed GPU machine): the GPU tests, one GPU training run and a 2-job GPU sweep.
# Expects hydra-core/omegaconf/antlr wheels in .whl/ when the machine's Python lacks them.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}; mkdir -p "$OUT"
if ! python3 -c "import hydra" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1 FTCLI_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, torchvision, lightning; print('torch', torch.__version__, 'tv', torchvision.__version__, 'lightning', lightning.__version__, 'bf16', torch.cuda.is_bf16_supported())" | tee -a "$OUT/gpu.txt"
python3 -m pytest -q tests/test_gpu.py -p no:cacheprovider 2>&1 | tail -15 | tee "$OUT/pytest.txt"
work=$(mktemp -d)
( cd "$work" && python3 -m ftcli.cli train model.weights=null data=shapes data.per_class=100 trainer.max_epochs=3 \
    print_config=false trainer.enable_progress_bar=false hydra.run.dir="$work/run" ) > "$OUT/train.txt" 2>&1
echo "train exit $?" | tee -a "$OUT/train.txt"; tail -25 "$OUT/train.txt"
( cd "$work" && python3 -m ftcli.cli train -m model=resnet50 model.weights=null strategy=feature_extraction,full \
    data=shapes data.per_class=100 trainer.max_epochs=2 print_config=false trainer.enable_progress_bar=false \
    hydra.sweep.dir="$work/sweep" ) > "$OUT/sweep.txt" 2>&1
echo "sweep exit $?" | tee -a "$OUT/sweep.txt"; tail -15 "$OUT/sweep.txt"
cp "$work/run/summary.json" "$OUT/summary.json" 2>/dev/null
grep -h "precision\|GPU available\|bf16\|16-mixed" "$work/run/train.log" | head -5
