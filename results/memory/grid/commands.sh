#!/bin/bash
# Issue 20 §5 on masked CartPole, 10 seeds (0-9), 1,000 episodes each (README "What the memory agent's parts do"):
# the ALIF grid (W_rec and W_in fixed or learned by e-prop's traces, each without and with the TD critic), the memory
# agent with its W_rec and W_in fixed, and every condition's decoding probe. Run from the repository root on this
# machine (2 cores, Intel Xeon, shared with the reference-table runs at the time: the curves are exact, the
# wall-clock is not a speed).
set -euo pipefail
PY=${PYTHON:-.venv/bin/python}
scripts/experiments.sh alif runs/alif log_images_every=0               # masked_cartpole_alif_{fixed,eprop}{,_critic}
scripts/experiments.sh memory runs/memory log_images_every=0           # masked_cartpole_norec, _memory (_difference stopped)
SEED=10 scripts/experiments.sh memory runs/memory_heldout log_images_every=0
$PY scripts/train.py experiment=masked_cartpole_memory learner.learn_rec=false learner.learn_in=false learner.rate_reg=0.0 \
  num_agents=10 seed=0 progress=false log_images_every=0 run_dir=runs/references/masked_cartpole_memory_fixed
$PY scripts/train.py experiment=masked_cartpole_norec learner.timescale=slow learner.n_passes=1 \
  num_agents=10 seed=0 progress=false log_images_every=0 run_dir=runs/references/masked_cartpole_eprop   # e-prop
$PY scripts/train.py experiment=masked_cartpole_rec num_agents=10 seed=0 progress=false log_images_every=0 \
  run_dir=runs/references/masked_cartpole_rec                         # learned W_rec at lr / 10
RUNS="runs/memory/masked_cartpole_norec runs/references/masked_cartpole_eprop runs/references/masked_cartpole_rec
  runs/alif/masked_cartpole_alif_fixed runs/alif/masked_cartpole_alif_fixed_critic runs/alif/masked_cartpole_alif_eprop
  runs/alif/masked_cartpole_alif_eprop_critic runs/references/masked_cartpole_memory_fixed runs/memory/masked_cartpole_memory"
$PY scripts/report.py $RUNS --budget 1000 --threshold 475 --out results/memory/grid
$PY scripts/aggregate.py $RUNS --out results/memory/grid
# the same against the memory agent with W_rec and W_in fixed: is it the learning or the network?
$PY scripts/report.py runs/references/masked_cartpole_memory_fixed runs/memory/masked_cartpole_memory \
  runs/alif/masked_cartpole_alif_eprop_critic runs/alif/masked_cartpole_alif_fixed_critic --budget 1000 --threshold 475 \
  --out results/memory/grid/vs_memory_fixed
# Decoding probe of every agent (20 held-out episodes, its own pi_ref, sampled actions), then one table
for d in $RUNS runs/memory/masked_cartpole_memory_difference; do $PY scripts/decode_probe.py "$d" --episodes 20; done
$PY scripts/decode_table.py $RUNS runs/memory/masked_cartpole_memory_difference --out results/memory/grid/decode_table.csv
for d in runs/memory_heldout/masked_cartpole_norec runs/memory_heldout/masked_cartpole_memory \
         runs/memory_heldout/masked_cartpole_memory_difference; do $PY scripts/decode_probe.py "$d" --episodes 20; done
$PY scripts/decode_table.py runs/memory_heldout/masked_cartpole_norec runs/memory_heldout/masked_cartpole_memory \
  runs/memory_heldout/masked_cartpole_memory_difference --out results/memory/grid/decode_table_heldout_seeds_10_19.csv
# Follow-up on the read-out: the memory agent with fixed weights and a weaker spike reset (network.self_inhibition
# 10 or 20 instead of 100), so that each neuron fires sooner again and the read-out traces see more of the membranes
for i in 10 20; do
  $PY scripts/train.py experiment=masked_cartpole_memory learner.learn_rec=false learner.learn_in=false learner.rate_reg=0.0 \
    network.self_inhibition=$i num_agents=10 seed=0 progress=false log_images_every=0 \
    run_dir=runs/references/masked_cartpole_memory_fixed_inh$i
  $PY scripts/decode_probe.py runs/references/masked_cartpole_memory_fixed_inh$i --episodes 20
done
$PY scripts/report.py runs/references/masked_cartpole_memory_fixed runs/references/masked_cartpole_memory_fixed_inh20 \
  runs/references/masked_cartpole_memory_fixed_inh10 --budget 1000 --threshold 475 --out results/memory/grid/self_inhibition
$PY scripts/decode_table.py runs/references/masked_cartpole_memory_fixed runs/references/masked_cartpole_memory_fixed_inh20 \
  runs/references/masked_cartpole_memory_fixed_inh10 --out results/memory/grid/self_inhibition/decode_table.csv
