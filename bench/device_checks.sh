#!/usr/bin/env bash
# The checks that need a CUDA device, in one run (about 10 minutes on one H100/H200). Each
# writes JSON under ${OUT:-device_out}/; the repository must be importable (PYTHONPATH) and
# lark installed. Run from the repository root:
#     OUT=/tmp/out bash bench/device_checks.sh
set -u
OUT=${OUT:-device_out}
mkdir -p "$OUT"
run() { echo "== $*" >&2; timeout 900 "$@"; echo "rc=$?" >&2; }
cli() { python3 -m executor.app.cli "$@"; }

# every GPU-marked test (op sweep on CUDA, CUDA vs CPU, allocator vs plan, CUDA graphs)
run python3 -m pytest -q -m gpu tests -x -p no:cacheprovider > "$OUT/pytest_gpu.txt" 2>&1

# training: ResNet-152 batch 32, synthetic data, sublinear plan: the measured step peak
# against the plan (measured_over_plan per epoch); one epoch of 128 steps
run cli train resnet --param units=3,8,36,3 --param num_classes=10 --data synthetic \
    --batch 32 --epochs 1 --mirror sublinear --ctx cuda --json --quiet \
    > "$OUT/train_resnet152_sublinear.jsonl"
if [ "$(python3 -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
    run cli train resnet --param units=3,8,36,3 --param num_classes=10 --data synthetic \
        --batch 32 --epochs 1 --mirror sublinear --ctx cuda --workers 2 --json --quiet \
        > "$OUT/train_resnet152_2workers.jsonl"
fi

# mixed precision: ResNet-152 batch 32, float32 against bfloat16, measured step peak and
# samples/s (one epoch of 128 steps each, no recomputation)
for dt in float32 bfloat16; do
    run cli train resnet --param units=3,8,36,3 --param num_classes=10 --data synthetic \
        --batch 32 --epochs 1 --dtype $dt --ctx cuda --json --quiet \
        > "$OUT/train_resnet152_$dt.jsonl"
done

# step time against torch eager (op by op and with CUDA graphs), ResNet-50 and -152
for net in resnet50 resnet152; do
    run python3 bench/step.py --net $net --ctx cuda --batch 32 > "$OUT/step_$net.json"
    run python3 bench/step.py --net $net --ctx cuda --batch 32 --cuda-graph \
        > "$OUT/step_${net}_graph.json"
done
# ResNet-1001 sublinear: whole-step peak and time against our sharing
run python3 bench/step.py --net resnet1001 --ctx cuda --batch 32 --mirror sublinear \
    --skip-eager > "$OUT/step_resnet1001_sublinear.json"

# mixed precision on the device: planned vs measured, bfloat16
run cli memcost --net resnet --sweep 200 --strategies sharing,sublinear --dtype bfloat16 \
    --measure --json --quiet > "$OUT/memcost_resnet200_bf16.json"
echo "done: $OUT" >&2
