#!/usr/bin/env bash
# The GPU check: everything that needs a GPU, in one unattended run that fits a hard time limit
# (8 minutes on one H100 by default), ending in one table.
#
#   tests            the CUDA tests (pytest -m cuda)
#   pruning          bench/pruning.py: one pruning event on mBERT-shaped weights, on the device
#   train_step       bench/train_step.py: masks and movement-score overhead per training step (bf16 on CUDA)
#   vs_hf            bench/vs_hf.py --model mbert-shaped: our Trainer vs HF's Trainer
#   semi_structured  bench/semi_structured.py: 2:4 sparse kernels vs dense inference
#
# All models are mBERT-shaped (../shared/data/mbert-tokenizer/config.json, random weights). Every step
# runs under its own timeout, clipped to what is left of --budget, and writes its log, status and
# headline numbers into --out; the table is printed whatever happened to the steps. Exit status 0 only
# when every step succeeded.
#
#   bash bench/gpu.sh [--device cuda|cpu] [--tiny] [--out DIR] [--budget SECONDS] [--only STEP,STEP]
#                     [--limit STEP=SECONDS]... [--tests PATHS]
#
# --tiny shrinks every step to a smoke run (seconds on a CPU); --tests limits the test step to the given
# paths (default: tests). The code under test is this checkout's (PYTHONPATH), python is $PYTHON or python.
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false WANDB_MODE=disabled WANDB_SILENT=true
PYTHON=${PYTHON:-python}

STEPS=(tests pruning train_step vs_hf semi_structured)
declare -A LIMIT=([tests]=75 [pruning]=45 [train_step]=75 [vs_hf]=180 [semi_structured]=60)
DEVICE=cuda
TINY=0
OUT=""
BUDGET=470        # seconds for the whole script, under the 8-minute slot
RESERVE=25        # of which kept back for the environment probe and the summary
ONLY=""
TESTS="tests"

usage() { sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while (( $# )); do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --tiny) TINY=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --limit)
      step=${2%%=*}
      if [[ -z "${LIMIT[$step]+set}" || ! "${2#*=}" =~ ^[0-9]+$ ]]; then
        echo "gpu.sh: --limit takes STEP=SECONDS with STEP one of ${STEPS[*]}, got '$2'" >&2; exit 2
      fi
      LIMIT[$step]=${2#*=}; shift 2 ;;
    --tests) TESTS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [[ "$DEVICE" != cuda && "$DEVICE" != cpu ]]; then
  echo "gpu.sh: --device must be cuda or cpu, got '$DEVICE'" >&2; exit 2
fi
START=$(date +%s)
[[ -z "$OUT" ]] && OUT="$REPO/outputs/gpu-check-$(date -u +%Y%m%dT%H%M%SZ)"  # outputs/ is not tracked
mkdir -p "$OUT" || exit 2
rm -f "$OUT"/*.status

# run_step NAME COMMAND...: the command under `timeout`, its output in NAME.log, "rc milliseconds limit"
# (or "skipped REASON") in NAME.status
run_step() {
  local name=$1; shift
  if [[ -n "$ONLY" && ",$ONLY," != *",$name,"* ]]; then
    echo "skipped not selected (--only)" > "$OUT/$name.status"; return
  fi
  local left=$(( BUDGET - ($(date +%s) - START) - RESERVE ))
  local limit=${LIMIT[$name]}
  (( left < limit )) && limit=$left
  if (( limit < 5 )); then
    echo "skipped no time left in the ${BUDGET}s budget" > "$OUT/$name.status"; return
  fi
  echo "[gpu.sh] $name (timeout ${limit}s): $*" >&2
  local t0 rc
  t0=$(date +%s%N)
  timeout --kill-after=5 "$limit" "$@" > "$OUT/$name.log" 2>&1 < /dev/null
  rc=$?
  echo "$rc $(( ($(date +%s%N) - t0) / 1000000 )) $limit" > "$OUT/$name.status"
}

timeout 30 "$PYTHON" - > "$OUT/env.json" 2> "$OUT/env.log" <<'EOF'
import json, os, platform, torch
cuda = torch.cuda.is_available()
print(json.dumps({
    "torch": torch.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
    "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(0) if cuda else None,
    "capability": ".".join(map(str, torch.cuda.get_device_capability(0))) if cuda else None,
}))
EOF

if (( TINY )); then
  run_step tests "$PYTHON" -m pytest -m cuda -q -p no:cacheprovider --junitxml="$OUT/tests.xml" $TESTS
  run_step pruning "$PYTHON" bench/pruning.py --device "$DEVICE" --tiny --repeats 1 --json "$OUT/pruning.json"
  run_step train_step "$PYTHON" bench/train_step.py --device "$DEVICE" --tiny --steps 2 --rounds 1 --batch-size 4 \
    --json "$OUT/train_step.json"
  run_step vs_hf "$PYTHON" bench/vs_hf.py --device "$DEVICE" --tiny --train-limit 16 --dev-limit 8 --test-limit 8 \
    --epochs 1 --batch-size 8 --json "$OUT/vs_hf.json"
  run_step semi_structured "$PYTHON" bench/semi_structured.py --device "$DEVICE" --tiny --batch-size 4 --seq-len 32 \
    --min-run-time 0.2 --json "$OUT/semi_structured.json"
else
  run_step tests "$PYTHON" -m pytest -m cuda -q -p no:cacheprovider --junitxml="$OUT/tests.xml" $TESTS
  run_step pruning "$PYTHON" bench/pruning.py --device "$DEVICE" --json "$OUT/pruning.json"
  run_step train_step "$PYTHON" bench/train_step.py --device "$DEVICE" --model mbert-shaped --rounds 3 \
    --json "$OUT/train_step.json"
  run_step vs_hf "$PYTHON" bench/vs_hf.py --device "$DEVICE" --model mbert-shaped --json "$OUT/vs_hf.json"
  run_step semi_structured "$PYTHON" bench/semi_structured.py --device "$DEVICE" --json "$OUT/semi_structured.json"
fi

if ! timeout 30 "$PYTHON" bench/gpu_summary.py "$OUT" --device "$DEVICE" $( (( TINY )) && echo --tiny ); then
  # the summary script itself failed: a plain table from the status files, so a result always prints
  echo "| step | status (rc ms limit) |"
  echo "|---|---|"
  for step in "${STEPS[@]}"; do echo "| $step | $(cat "$OUT/$step.status" 2>/dev/null || echo 'not run') |"; done
  echo
  echo "logs: $OUT"
fi

for step in "${STEPS[@]}"; do
  read -r rc _ < "$OUT/$step.status" 2>/dev/null || rc=missing
  [[ "$rc" == 0 || ( -n "$ONLY" && ",$ONLY," != *",$step,"* ) ]] || exit 1
done
exit 0
