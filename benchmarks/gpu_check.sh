#!/usr/bin/env bash
# The GPU check: one command, under 8 minutes on one H100/H200.
#
#   benchmarks/gpu_check.sh                  # on a GPU machine: appends the figures to benchmarks/RESULTS.md
#   benchmarks/gpu_check.sh --device cpu     # the same steps at CI size (tests/test_gpu_check.py runs it)
#
# 1. the CUDA-marked tests (pytest -m cuda; they skip without a GPU);
# 2. benchmarks/train_step.py: minimrcnn vs torchvision training step, img/s and peak memory;
# 3. benchmarks/train_e2e.py: a short coco_r50_fpn_1x training on synthetic 800-px COCO-format data on disk,
#    started with --resume on an empty folder, killed after its checkpoint, resumed, evaluated; prints the
#    end-to-end iteration rate (data loading included).
# Then it appends the date, the GPU, the versions and every figure to the results file, and exits non-zero
# if a step failed. Options: --device cuda|cpu, --results FILE, --work DIR, --python PYTHON.
set -uo pipefail
cd "$(dirname "$0")/.."

DEVICE=cuda
RESULTS=""
WORK=runs/gpu_check
PY=${PYTHON:-python}
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE=$2; shift 2 ;;
        --results) RESULTS=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --python) PY=$2; shift 2 ;;
        *) echo "error: unknown option $1 (expected --device, --results, --work, --python)" >&2; exit 2 ;;
    esac
done
case "$DEVICE" in cuda|cpu) ;; *) echo "error: --device $DEVICE: expected cuda or cpu" >&2; exit 2 ;; esac
# a CPU run is a rehearsal: its figures stay out of benchmarks/RESULTS.md unless --results says otherwise
[ -n "$RESULTS" ] || { [ "$DEVICE" = cuda ] && RESULTS=benchmarks/RESULTS.md || RESULTS=$WORK/RESULTS-cpu.md; }
mkdir -p "$WORK"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
START=$(date +%s)
FAILED=()

# pycocotools may be missing on a bare GPU machine: install a wheel that travelled with the repository
if ! "$PY" -c "import pycocotools" 2>/dev/null; then
    WHEEL=$(ls shared/wheels/pycocotools*.whl .whl/pycocotools*.whl wheels/pycocotools*.whl 2>/dev/null | head -1)
    if [ -n "$WHEEL" ]; then
        "$PY" -m pip install -q --no-deps "$WHEEL" || true
    fi
fi
MISSING=$("$PY" -c "
import importlib.util as u
print(' '.join(m for m in ('torch', 'torchvision', 'numpy', 'PIL', 'pycocotools', 'tqdm') if u.find_spec(m) is None))")
if [ -n "$MISSING" ]; then
    echo "error: $PY lacks $MISSING (pycocotools: put its wheel in shared/wheels/)" >&2
    exit 1
fi
if [ "$DEVICE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: --device cuda but torch.cuda.is_available() is False (use --device cpu for the rehearsal)" >&2
    exit 1
fi
GPU=$("$PY" -c "
import torch
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f'{p.name}, {p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor}, CUDA {torch.version.cuda}')
else:
    print('none')")
VERSIONS=$("$PY" -c "import torch, torchvision; print(f'torch {torch.__version__}, torchvision {torchvision.__version__}')")
echo "gpu_check: device=$DEVICE gpu=[$GPU] $VERSIONS"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $WORK/NAME.log and to the screen
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*"
    local t0=$(date +%s)
    timeout "$limit" "$@" 2>&1 | tee "$WORK/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $(( $(date +%s) - t0 )) s"
    [ "$rc" = 0 ] || FAILED+=("$name (exit $rc)")
}

# 1. CUDA-marked tests (only the files that have some, so that collection stays short)
CUDA_TESTS=$(grep -l "pytest.mark.cuda" tests/test_*.py | tr '\n' ' ')
if "$PY" -c "import pytest" 2>/dev/null; then
    # -o addopts=: the project's addopts name nbval, which a bare GPU machine may not have
    step cuda_tests 150 "$PY" -m pytest -q -o addopts= -p no:cacheprovider -m cuda $CUDA_TESTS
else
    echo "== cuda_tests: pytest is not installed" | tee "$WORK/cuda_tests.log"
    FAILED+=("cuda_tests (no pytest)")
fi

# 2. the training-step benchmark, and 3. the end-to-end run through checkpoint, kill, --resume, evaluation
if [ "$DEVICE" = cuda ]; then
    step train_step 150 "$PY" benchmarks/train_step.py --device cuda --size 800 --batch 4 --amp --steps 20 --warmup 3
    step train_e2e 240 "$PY" benchmarks/train_e2e.py --device cuda --size 800 --images 64 --val-images 16 \
        --iters 200 --batch 4 --workers 8 --work "$WORK/e2e"
else
    step train_step 300 "$PY" benchmarks/train_step.py --device cpu --size 64 --batch 1 --steps 1 --warmup 0
    step train_e2e 300 "$PY" benchmarks/train_e2e.py --device cpu --size 64 --images 8 --val-images 2 \
        --iters 8 --batch 1 --workers 0 --backbone resnet18 --log-every 1 --work "$WORK/e2e"
fi

TOTAL=$(( $(date +%s) - START ))
STATUS="all steps passed"
[ ${#FAILED[@]} -eq 0 ] || STATUS="FAILED: ${FAILED[*]}"
{
    echo
    echo "### gpu_check.sh --device $DEVICE: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "GPU: $GPU; $VERSIONS; $(nproc --all) CPU cores; ${TOTAL} s in all; $STATUS."
    echo
    echo '```'
    echo "cuda tests: $(grep -E '(passed|failed|skipped|error|no tests ran|not installed)' "$WORK/cuda_tests.log" | tail -1)"
    grep -E '^(device=|torchvision|minimrcnn)' "$WORK/train_step.log" 2>/dev/null
    grep -E '^(data:|first start:|check:|e2e:|resumed run:|FAIL)' "$WORK/train_e2e.log" 2>/dev/null
    echo '```'
} >> "$RESULTS"
echo "gpu_check: $STATUS in $TOTAL s; figures appended to $RESULTS"
[ ${#FAILED[@]} -eq 0 ]
