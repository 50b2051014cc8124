#!/usr/bin/env bash
# Populate the smoke tier of leaderboards/v1 with real runs of the reference trainers, one run at a time,
# committing each new row as it lands. Resumable: rows already in leaderboards/v1/smoke.csv are skipped, a run
# folder with model.pt is evaluated without retraining, one with only checkpoint.pt resumes training.
#
#   nohup leaderboards/run_smoke.sh > runs/smoke.log 2>&1 &
#
# Order: the multi-task study's models first (they decide the paper's ordering claim), seed 0 before 1 and 2.
# A run that fails is retried (resumed) in a second pass.
#
# REEVALUATE=1 also re-evaluates the rows already in the table from their run folders (one pass; after a
# protocol change that adds scores — see leaderboards/CHANGELOG.md).
set -uo pipefail
cd "$(dirname "$0")/.."
DB=${DB:-.venv/bin/disentbench}
COMMIT=${COMMIT:-1}
STUDY="ground-truth random one-head multi-head single-task"
AES="ae vae beta-vae factor-vae"
DATASETS=${DATASETS:-"shapes3d-procedural dsprites-procedural"}
REEVALUATE=${REEVALUATE:-0}
PASSES="1 2"; EXTRA=()
if [ "$REEVALUATE" = 1 ]; then PASSES="1"; EXTRA=(--reevaluate); fi

run_one() {  # model dataset seed
  "$DB" leaderboard populate --tier smoke --models "$1" --datasets "$2" --seeds "$3" --work-dir runs "${EXTRA[@]}" || {
    echo "run $1 $2 seed $3 failed; continuing" >&2; return 0; }
  if [ "$COMMIT" = 1 ] && [ -n "$(git status --porcelain -- leaderboards/v1)" ]; then
    for _ in 1 2 3 4 5; do
      git add leaderboards/v1 && git commit -q -m "leaderboard v1 smoke: $1 on $2, seed $3" -- leaderboards/v1 && break
      sleep 5
    done
  fi
}

for pass in $PASSES; do
  for seed in 0 1 2; do
    for group in "$STUDY" "$AES"; do
      for dataset in $DATASETS; do
        for model in $group; do
          run_one "$model" "$dataset" "$seed"
        done
      done
    done
  done
done
echo "smoke tier done (see leaderboards/v1/smoke.csv for what landed)"
