#!/usr/bin/env bash
# The digits benchmarks of benchmarks/README.md ("Few-shot: digits"): 5-way K-shot on
# scikit-learn's 8×8 digits, 40 (digit, rotation) classes of which 12 are held out, plain and
# with every image shifted by up to a pixel (`shift: 1`); every learner on the same 4-block
# conv net (64 filters; the meta-LSTM, whose coordinate-wise LSTM runs on every weight, on 16),
# 8 tasks × 15 queries per class per iteration, 1000 iterations; evaluated on 600 held-out tasks
# after 0..10 steps (gradient learners) or for K shots (metric learners), beside scratch.
# Reptile's inner steps train on 10 shots per class (its paper's --train-shots 10), evaluation
# adapts on K: trained on K = 1 it stayed below scratch (46.0% against 48.1%, shifted 1-shot).
# Usage: bash benchmarks/fewshot/digits.sh [OUT] (default benchmarks/results/fewshot).
set -euo pipefail
out=${1:-benchmarks/results/fewshot}
common=(--iterations 1000 --seed 0 --set meta_batch_size=8 --set queries=15)
run() {  # SHIFT SHOTS NAME AGENT ARGS...: train (or resume) to the end, then evaluate; a folder
  # already evaluated with its final policy (as committed, without latest.pt) is done
  local moved=$1 shots=$2 name=$3 agent=$4
  local dir=$out/$name-digits-shift$moved-$shots-shot
  shift 4
  if [ -f "$dir/eval/adaptation.json" ] && [ -f "$dir/checkpoints/policy.pt" ]; then return; fi
  if [ -f "$dir/config.yaml" ]; then metarl train --resume "$dir"; else
    metarl train "$agent" --env digits --env-kwargs "{\"ways\": 5, \"shift\": $moved}" \
      "${common[@]}" --set shots="$shots" "$@" --out "$dir"; fi
  # every learner on the 64-filter net meets the protonet's tasks with the protonet's scratch
  # network: take its scratch baseline (checked by key) rather than train it again, 3 min a run
  local reuse=()
  case $name in protonet | meta-lstm) ;; *)
    reuse=(--scratch-from "$out/protonet-digits-shift$moved-$shots-shot") ;; esac
  metarl evaluate "$dir" --tasks 600 --adapt-steps 10 "${reuse[@]}"
}
for setting in "1 1" "1 5" "0 1" "0 5"; do
  read -r moved shots <<<"$setting"
  run "$moved" "$shots" protonet protonet
  run "$moved" "$shots" matching-net matching-net
  run "$moved" "$shots" maml maml --set inner_lr=0.4
  run "$moved" "$shots" fo-maml fo-maml --set inner_lr=0.4
  run "$moved" "$shots" meta-sgd meta-sgd --set inner_lr=0.4
  run "$moved" "$shots" reptile reptile --set inner_lr=0.1 --set train_shots=10
  run "$moved" "$shots" meta-lstm meta-lstm --set conv_channels=16 --set meta_batch_size=2
done
# The inner step size (benchmarks/README, "Digits"): MAML and FO-MAML again at α 0.1, shifted 1-shot
run 1 1 maml-lr0.1 maml --set inner_lr=0.1
run 1 1 fo-maml-lr0.1 fo-maml --set inner_lr=0.1
