#!/usr/bin/env bash
# Issue 20's runs (benchmarks/README.md, "VariBAD and attention policies"): RL² with the SNAIL
# and Transformer policies beside the GRU at equal env steps, and VariBAD beside RL² and PEARL,
# on Duan et al.'s n = 10, k = 5 bandits and on Navigation2D. The GRU, PEARL rows are the
# committed results/rl2-trpo-bandit-n10-k5, rl2-trpo-navigation2d-s1/-s2 and
# pearl-navigation2d folders. Each run is trained (or resumed) to its end, then evaluated:
# bandits on 500 tasks of seed 0 (rl2_tables.py's), Navigation2D on seed 0's 40 held-out tasks
# (seed 10000), trials of the training's episodes. One torch thread per run.
# Usage: bash benchmarks/in_context.sh [OUT] (default benchmarks/results).
set -euo pipefail
out=${1:-benchmarks/results}
export OMP_NUM_THREADS=1
run() {  # NAME EVAL_ARGS -- TRAIN_ARGS...: a folder already evaluated with its final policy is done
  local dir=$out/$1 evaluation=$2
  shift 3
  if [ -f "$dir/eval/adaptation.json" ] && [ -f "$dir/checkpoints/policy.pt" ]; then return; fi
  if [ -f "$dir/config.yaml" ]; then metarl train --resume "$dir"; else
    metarl train "$@" --seed 0 --out "$dir"; fi
  # shellcheck disable=SC2086
  metarl evaluate "$dir" $evaluation
}
# VariBAD at the GRU runs' 800k env steps: 250 iterations of 16 trials × 2 episodes × 100 steps
run varibad-navigation2d "--tasks 40 --seed 10000" -- varibad --env navigation2d --iterations 250
bandit=(--env bandit --env-kwargs '{"k": 5}' --iterations 500 --set meta_batch_size=200
  --set episodes_per_trial=10 --set max_kl=0.01)
for policy in snail transformer; do
  run "rl2-trpo-$policy-bandit-n10-k5" "--tasks 500 --seed 0" -- rl2-trpo "${bandit[@]}" \
    --set policy=$policy
done
navigation=(--env navigation2d --set meta_batch_size=40 --set episodes_per_trial=2
  --set fisher_trials=8 --set max_kl=0.01)
for policy in snail transformer; do
  run "rl2-trpo-$policy-navigation2d" "--tasks 40 --seed 10000" -- rl2-trpo "${navigation[@]}" \
    --iterations 100 --set policy=$policy
done
# and at the bandit row's 1M: 500 iterations of 200 trials × 10 pulls
run varibad-bandit-n10-k5 "--tasks 500 --seed 0" -- varibad --env bandit --env-kwargs '{"k": 5}' \
  --iterations 500 --set meta_batch_size=200 --set episodes_per_trial=10 --set minibatch_trials=50
# Navigation2D again at the GRU seed 0's 3.2M env steps (results/rl2-trpo-navigation2d, 400
# iterations). We ran these by resuming copies of the 800k folders above with `metarl train
# --resume DIR --iterations N`; resume is exact and no agent reads `iterations`, so these
# commands from scratch give the same rows.
run varibad-navigation2d-1000 "--tasks 40 --seed 10000" -- varibad --env navigation2d \
  --iterations 1000
for policy in snail transformer; do
  run "rl2-trpo-$policy-navigation2d-400" "--tasks 40 --seed 10000" -- rl2-trpo \
    "${navigation[@]}" --iterations 400 --set policy=$policy
done
# MuJoCo: VariBAD on HalfCheetahVel (v* ~ U[0, 3]) at the RL² run's 4.8M env steps
# (results/rl2-trpo-halfcheetah-vel: 300 iterations of 40 trials × 2 episodes × 200 steps), then
# to 9.6M (resumed from a copy, as above), and on HalfCheetahDir at 4.8M: 16 trials × 2 × 200 per
# iteration, one sampler thread
mujoco=(--set num_workers=1)
run varibad-halfcheetah-vel "--tasks 40 --seed 10000" -- varibad --env halfcheetah-vel \
  --iterations 750 "${mujoco[@]}"
run varibad-halfcheetah-vel-1500 "--tasks 40 --seed 10000" -- varibad --env halfcheetah-vel \
  --iterations 1500 "${mujoco[@]}"
run varibad-halfcheetah-dir "--tasks 40 --seed 10000" -- varibad --env halfcheetah-dir \
  --iterations 750 "${mujoco[@]}"
