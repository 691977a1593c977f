#!/usr/bin/env bash
# The commands that wrote this folder (README "Adaptive neurons on masked CartPole"), run from the repository root on
# the 2-core development machine (Intel Xeon, shared with other work: load average 7-25 while these ran).
# Each run: 4 agents (seeds 0-3, or 4-7) in one process, 300 episodes of masked CartPole (up to 500 steps).
set -euo pipefail
run() {  # run OUT NAME overrides...
  out=$1; name=$2; shift 2
  python scripts/train.py num_agents=4 iterations=300 progress=false log_images_every=0 run_dir="$out/$name" "$@"
}
p=runs/memory_probe_alif
# The four conditions of the probe and the lif_box reference, seeds 0-3
for x in masked_cartpole_rec masked_cartpole_alif_fixed masked_cartpole_alif_eprop masked_cartpole_alif_fixed_critic \
         masked_cartpole_alif_eprop_critic; do
  run $p $x experiment=$x seed=0
done
# Variants of the e-prop + critic condition, seeds 0-3 (the first became masked_cartpole_memory; the run of that file
# below reproduces its metrics.csv bit for bit)
run $p alif_eprop_critic_hetero_reg experiment=masked_cartpole_alif_eprop_critic "network.tau_mem_steps=[2,30]" learner.rate_reg=1.0
run $p alif_eprop_critic_per_step experiment=masked_cartpole_alif_eprop_critic learner.rec_update=per_step \
    learner.rec_lr=1.5e-4 learner.in_lr=1.5e-4
run $p alif_eprop_critic_random_fb experiment=masked_cartpole_alif_eprop_critic learner.feedback=random
run $p masked_cartpole_memory experiment=masked_cartpole_memory seed=0
# After the velocity probe showed W_in hardly moving: W_in at ten times W_out's lr, seeds 0-3, then 4-7
run $p masked_cartpole_memory_in_lr_x10 experiment=masked_cartpole_memory learner.in_lr=1.5e-2 seed=0
run runs/memory_heldout masked_cartpole_memory_in_lr_x10 experiment=masked_cartpole_memory learner.in_lr=1.5e-2 seed=4
# CartPole-v1's best learner settings (experiment cartpole_lfcs) on the masked task, seeds 0-3
s=runs/memory_search
CP="learner.timescale=slow learner.n_passes=8 learner.lr=3e-3 learner.eps=0.1 learner.clip=ppo learner.terminal_credit=true
    learner.critic=td learner.critic_lr=1e-2 network.tau_readout_steps=4 network.out_std=0.01"
run $s cp_lif_fixed experiment=masked_cartpole_fixed seed=0 $CP
run $s cp_alif_fixed experiment=masked_cartpole_alif_fixed seed=0 $CP
run $s cp_alif_hetero_fixed experiment=masked_cartpole_alif_fixed seed=0 $CP "network.tau_mem_steps=[2,30]"
run $s cp_alif_tau20_b2_fixed experiment=masked_cartpole_alif_fixed seed=0 $CP network.tau_adapt_steps=20 network.adapt_beta=2
run $s cp_lif_hetero_fixed experiment=masked_cartpole_fixed seed=0 $CP "network.tau_mem_steps=[2,30]"
# The chosen agent and two controls on seeds 4-7, which played no part in the choice
h=runs/memory_heldout
for x in masked_cartpole_memory masked_cartpole_alif_fixed masked_cartpole_rec; do
  run $h $x experiment=$x seed=4
done
# Statistics (report.py) and curves (aggregate.py)
r=results/memory_probe_alif
python scripts/report.py $p/masked_cartpole_alif_fixed $p/masked_cartpole_alif_eprop $p/masked_cartpole_alif_fixed_critic \
    $p/masked_cartpole_alif_eprop_critic $p/masked_cartpole_memory $p/alif_eprop_critic_per_step \
    $p/alif_eprop_critic_random_fb $p/masked_cartpole_memory_in_lr_x10 $p/masked_cartpole_rec $s/cp_lif_fixed $s/cp_alif_fixed $s/cp_alif_hetero_fixed \
    $s/cp_alif_tau20_b2_fixed $s/cp_lif_hetero_fixed --threshold 30 --out $r
python scripts/aggregate.py $p/masked_cartpole_alif_fixed $p/masked_cartpole_alif_eprop $p/masked_cartpole_alif_fixed_critic \
    $p/masked_cartpole_alif_eprop_critic $p/masked_cartpole_memory $p/masked_cartpole_rec --out $r
python scripts/report.py $h/masked_cartpole_alif_fixed $h/masked_cartpole_memory $h/masked_cartpole_memory_in_lr_x10 \
    $h/masked_cartpole_rec --threshold 30 --out $r/heldout_seeds_4_7
# What the read-out carries about the hidden velocities, before and after training
python scripts/velocity_probe.py --runs $p/masked_cartpole_alif_fixed $p/masked_cartpole_alif_eprop \
    $p/masked_cartpole_alif_eprop_critic $p/masked_cartpole_memory $p/masked_cartpole_memory_in_lr_x10 \
    $p/masked_cartpole_rec --out $r/velocity_r2.json
