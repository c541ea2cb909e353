#!/usr/bin/env bash
# The GPU figures of the speed benchmarks, in one call of a lent machine (device tool: 15
# minutes in all, starts included), which has PyTorch, transformers and CUDA but no network.
#
# Here, once:  python benchmarks/gpu_model.py pack .gpu/minilm   (MiniLM, fp16, gzip: 29 MiB)
#              pip download the wheels the image lacks into .whl/ (datasets, pydantic, captum,
#              dill, multiprocess, annotated-types, typing-inspection, typing-extensions)
# There:       bash benchmarks/gpu_speed.sh   (carry .gpu, .whl and data/zh-sentiment)
#              STEPS="profile-tunelab train-zh" picks steps (profile-ARM: py-spy, a wheel);
#              next lease: STEPS="attention-shapes train-en-pad8 train-zh-packed predict"
#              (all three unmeasured on a GPU; attention-shapes takes seconds; train-zh-packed
#              is tunelab with packed against padded batches, the CPU's default never run on
#              a GPU)
#
# Each step writes its results under $OUT as soon as it ends, so a run stopped at its time
# limit still returns what it finished; the order is the order of importance.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-speed}
ROWS=${ROWS:-3000}
REPEATS=${REPEATS:-2}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
if [ -d .whl ] && [ -z "${NO_WHEELS:-}" ]; then  # NO_WHEELS=1: a dry run here
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
export TUNELAB_CACHE=/tmp/tunelab-cache
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,driver_version --format=csv \
    | tee "$OUT/machine.txt"
$PYTHON - <<'PY' | tee -a "$OUT/machine.txt"
import importlib.metadata as m
import torch
print({name: m.version(name) for name in ("torch", "transformers", "datasets", "pyarrow",
                                          "accelerate", "peft", "tokenizers", "captum")})
if torch.cuda.is_available():
    a, b = (torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        a @ b
    end.record()
    torch.cuda.synchronize()
    print(f"bf16 matmul 8192^3: {10 * 2 * 8192**3 / start.elapsed_time(end) / 1e9:.0f} TFLOP/s")
PY
$PYTHON benchmarks/gpu_model.py unpack .gpu/minilm /tmp/minilm || exit 1

step() {  # name, then the command; its log goes under $OUT
    local name=$1; shift
    local began=$SECONDS
    "$@" > "$OUT/$name.log" 2>&1  # one file a step: at most 8 files come back
    echo "== $name: rc $? in $((SECONDS - began)) s"
    grep -v "Loading weights\|^Map\|Writing model" "$OUT/$name.log" | tail -20
}
profile() {  # where one arm's process spends its time (py-spy, carried as a wheel); the
    # child's other options are train_speed.py's defaults, as its parent passes them
    /tmp/site/bin/py-spy record --format raw --rate 100 --output "$OUT/profile-$1.txt" -- \
        $PYTHON benchmarks/train_speed.py --child "$1" --model /tmp/minilm --data en-sst2 \
        --train-rows "$ROWS"
    gzip -f "$OUT/profile-$1.txt"
}
for name in ${STEPS:-train-en predict train-zh train-en-compile}; do
    case $name in
    train-en) step train-en $PYTHON benchmarks/train_speed.py --model /tmp/minilm \
        --data en-sst2 --train-rows "$ROWS" --repeats "$REPEATS" --out "$OUT/train_speed-gpu.json";;
    predict) step predict $PYTHON benchmarks/predict_speed.py --model /tmp/minilm \
        --run /tmp/predict/run --threads "$(nproc)" --out "$OUT/predict_speed-gpu.json";;
    train-zh) step train-zh $PYTHON benchmarks/train_speed.py --model /tmp/minilm \
        --data zh-sentiment --train-rows "$ROWS" --repeats "$REPEATS" \
        --out "$OUT/train_speed-gpu-zh.json";;
    train-en-compile) step train-en-compile $PYTHON benchmarks/train_speed.py \
        --model /tmp/minilm --data en-sst2 --train-rows "$ROWS" --repeats 1 --arms tunelab \
        --set training.torch_compile=true --out "$OUT/train_speed-gpu-compile.json";;
    train-en-pad8) step train-en-pad8 $PYTHON benchmarks/train_speed.py --model /tmp/minilm \
        --data en-sst2 --train-rows "$ROWS" --repeats "$REPEATS" \
        --arms best_practice_random,tunelab --set training.pad_to_multiple_of=8 \
        --out "$OUT/train_speed-gpu-pad8.json";;
    train-zh-packed) step train-zh-packed $PYTHON benchmarks/train_speed.py --model /tmp/minilm \
        --data zh-sentiment --train-rows "$ROWS" --repeats "$REPEATS" \
        --arms tunelab,tunelab_padded --out "$OUT/train_speed-gpu-zh-packed.json";;
    attention-shapes) step attention-shapes $PYTHON benchmarks/gpu_attention_shapes.py \
        --model /tmp/minilm --out "$OUT/attention_shapes-gpu.json";;
    profile-*) step "$name" profile "${name#profile-}";;
    esac
done
