#!/usr/bin/env bash
# Issue 17's ProMP-paper comparison (benchmarks/README.md, "Reproductions"): ProMP, MAML-TRPO,
# FO-MAML and E-MAML at the ProMP paper's batch, equal env steps (reproductions/
# AGENT-ENV-promp-paper.yaml: 40 tasks × 20 episodes of 100 steps per stage, 160,000 env steps
# an iteration, 300 iterations), seed 0 each, two runs at a time on one torch thread each.
# Each trains by `metarl reproduce NAME --seeds 1` into runs/NAME/seed-0 (an interrupted run
# resumes there), is copied to benchmarks/results/NAME-s0 and evaluated on 40 held-out tasks
# after 0..2 inner steps.
# Usage: bash benchmarks/promp_ordering.sh [ENV] (halfcheetah-dir, the default, or ant-dir).
set -euo pipefail
env=${1:-halfcheetah-dir}
export OMP_NUM_THREADS=1
one() {  # AGENT: train (or resume) to the end, copy to results/, evaluate
  local name=$1-$env-promp-paper
  local dir=benchmarks/results/$name-s0
  # a folder is copied to results/ only once its run is complete: evaluated means done
  if [ -f "$dir/eval/adaptation.json" ]; then return; fi
  metarl reproduce "$name" --seeds 1 --out "runs/$name"
  rm -rf "$dir" && cp -r "runs/$name/seed-0" "$dir"
  rm -rf "$dir/.lock" "$dir/tensorboard" "$dir"/checkpoints/iter_*.pt
  metarl evaluate "$dir" --tasks 40 --adapt-steps 2
}
(one promp && one fo-maml) &
first=$!
(one maml-trpo && one e-maml) &
second=$!
wait "$first"
wait "$second"
