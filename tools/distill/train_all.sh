#!/usr/bin/env bash
# Reproduces the built-in default model from nothing: corpus, tokenizer, teacher, scratch student,
# distilled student, QAT fine-tunes, GGUF export, quantization, evaluation. Fixed seeds.
#
#   tools/distill/train_all.sh [WORK_DIR] [BUILD_DIR]
#
# WORK_DIR (default /tmp/lightboat-distill) receives everything but data/heldout.jsonl (written
# beside this script) and models/lightboat-home.gguf (the shipped file, copied at the end).
# BUILD_DIR (default build) must hold a built `lightboat` and `distill_export`.
# STAGE=train stops after training; STAGE=export starts from the trained checkpoints.
# Single-threaded processes, two at a time where steps are independent: on 2 busy cores this
# beats one 2-thread process (OpenBLAS threads spin against the other load).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK="${1:-/tmp/lightboat-distill}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
BUILD="$(cd "${2:-$ROOT/build}" && pwd)"
STAGE="${STAGE:-all}"
PY="${PYTHON:-/usr/bin/python3}"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$WORK"
cd "$HERE"
run() { echo "+ $*" >&2; nice -n 10 "$PY" "$@"; }

if [ "$STAGE" != export ]; then
  run prepare.py --out "$WORK" --n-train 60000 --n-heldout 300 --vocab 768 --seed 1234
  run train.py teacher --work "$WORK" --out "$WORK/teacher.pt" --steps 350 --lr 2e-3 >"$WORK/teacher.log" 2>&1 &
  T=$!
  run train.py scratch --work "$WORK" --out "$WORK/scratch.pt" --steps 350 --lr 3e-3 >"$WORK/scratch.log" 2>&1
  wait $T
  run train.py distill --work "$WORK" --out "$WORK/student.pt" --teacher "$WORK/teacher.pt" --steps 350 \
    --lr 3e-3 --alpha 0.2 --beta 0.5 --t-start 5 --t-end 1 >"$WORK/distill.log" 2>&1
  run train.py qat --work "$WORK" --out "$WORK/student_qat_q8.pt" --init "$WORK/student.pt" \
    --teacher "$WORK/teacher.pt" --qat Q8_0 --steps 100 --lr 5e-4 >"$WORK/qat_q8.log" 2>&1 &
  Q=$!
  run train.py qat --work "$WORK" --out "$WORK/student_qat_q4.pt" --init "$WORK/student.pt" \
    --teacher "$WORK/teacher.pt" --qat Q4_0 --steps 100 --lr 5e-4 >"$WORK/qat_q4.log" 2>&1
  wait $Q
  [ "$STAGE" = train ] && exit 0
fi

# ---- Export (F32 GGUF through Lightboat's writer), quantization, evaluation ----
LB="$BUILD/lightboat"
EXPORT="$BUILD/distill_export"
DATA="$HERE/data/heldout.jsonl"
for m in teacher scratch student student_qat_q8 student_qat_q4; do
  run export.py dump "$WORK/$m.pt" --work "$WORK" --out "$WORK/$m" --name lightboat-home
  "$EXPORT" --in "$WORK/$m" -o "$WORK/$m-F32.gguf"
done
"$LB" quantize "$WORK/student-F32.gguf" "$WORK/student-Q8_0.gguf" Q8_0
"$LB" quantize "$WORK/student-F32.gguf" "$WORK/student-Q4_0.gguf" Q4_0
"$LB" quantize "$WORK/student_qat_q8-F32.gguf" "$WORK/student_qat-Q8_0.gguf" Q8_0
"$LB" quantize "$WORK/student_qat_q4-F32.gguf" "$WORK/student_qat-Q4_0.gguf" Q4_0
# Python's tokenization (what the models were trained on) must equal the engine's.
run tokcheck.py "$LB" "$WORK/student-F32.gguf" "$WORK/vocab.json" "$DATA"

# The shipped model: the QAT Q4_0 student (see docs/default-model.md for why).
SHIP=student_qat-Q4_0
mkdir -p "$ROOT/models"
cp "$WORK/$SHIP.gguf" "$ROOT/models/lightboat-home.gguf"
run export.py reference "$WORK/student_qat_q4.pt" --work "$WORK" --fake Q4_0 \
  --prompt "please unlock the front door" --out "$ROOT/tests/distill/reference_logits.json"

# Held-out evaluation of every variant by Lightboat itself (2 threads), and the CI subset.
: >"$WORK/eval.jsonl"
for m in teacher-F32 scratch-F32 student-F32 student-Q8_0 student-Q4_0 student_qat_q8-F32 student_qat_q4-F32 \
         student_qat-Q8_0 student_qat-Q4_0; do
  r=$("$LB" eval -m "$WORK/$m.gguf" --data "$DATA" --json -t 2)
  echo "{\"model\":\"$m\",\"bytes\":$(stat -c %s "$WORK/$m.gguf"),\"eval\":$r}" | tee -a "$WORK/eval.jsonl"
done
r=$("$LB" eval -m "$ROOT/models/lightboat-home.gguf" --data "$DATA" --limit 60 --json -t 1)
"$PY" - "$r" "$ROOT/tests/distill/expected_eval.json" <<'PYEOF'
import json, sys
r = json.loads(sys.argv[1])
json.dump({"data": "tools/distill/data/heldout.jsonl", "limit": 60, "accuracy": r["accuracy"],
           "perplexity": round(r["perplexity"], 4), "accuracy_tolerance": 0.02,
           "perplexity_rel_tolerance": 0.01}, open(sys.argv[2], "w"), indent=1)
print("CI subset:", r)
PYEOF
"$LB" run -p "please unlock the front door" --json -t 2
