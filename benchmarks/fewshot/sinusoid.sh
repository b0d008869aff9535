#!/usr/bin/env bash
# The sinusoid benchmarks of benchmarks/README.md ("Few-shot: sinusoid"): Finn et al. 2017's
# setting (K = 10, α = 0.01, one inner step, 25 tasks per iteration, Adam 1e-3, 70k iterations),
# each run evaluated on 600 held-out tasks after 0..10 steps, beside the scratch baseline.
# (The maml, pretrained and reptile folders were made with --checkpoint-every 50, the default
# then, their kept checkpoints deleted before committing; metarl's default is now 5000.)
# Usage: bash benchmarks/fewshot/sinusoid.sh [OUT] (default benchmarks/results/fewshot).
set -euo pipefail
out=${1:-benchmarks/results/fewshot}
run() {  # NAME AGENT ARGS...: train (or resume) to the end, then evaluate; a folder already
  # evaluated with its final policy (as committed, without latest.pt) is done
  local dir=$out/$1 agent=$2
  shift 2
  if [ -f "$dir/eval/adaptation.json" ] && [ -f "$dir/checkpoints/policy.pt" ]; then return; fi
  if [ -f "$dir/config.yaml" ]; then metarl train --resume "$dir"; else
    metarl train "$agent" --env sinusoid --seed 0 "$@" --out "$dir"; fi
  metarl evaluate "$dir" --tasks 600 --adapt-steps 10
}
run maml-sinusoid maml --iterations 70000
run pretrained-sinusoid pretrained --iterations 70000
run fo-maml-sinusoid fo-maml --iterations 70000
run meta-sgd-sinusoid meta-sgd --iterations 70000
run reptile-sinusoid reptile --iterations 30000
run meta-lstm-sinusoid meta-lstm --iterations 3000 --set meta_batch_size=5
