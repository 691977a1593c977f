#!/usr/bin/env bash
# Issue 22's cheap probe (4 seeds, 0-3): which off-policy configuration to run at 10 seeds. Resumable: running it again
# continues unfinished runs from their checkpoints. Usage: results/offpolicy/probe.sh cartpole|pong OUT_DIR
# Each condition is one run of 4 agents; conditions run one after the other (one core per chain).
set -euo pipefail
PYTHON=${PYTHON:-python}
cd "$(dirname "$0")/../.."
chain=${1:?cartpole or pong}
out=${2:?OUT_DIR}
D="learner.off_policy=decoupled"
V="learner.off_policy=vtrace learner.critic=td"
S="learner.lr_scale=per_episode"
case $chain in
  cartpole) iterations=300; conditions=(
    "k1|experiment=cartpole_lfcs $D"
    "k4_decoupled_lrK|experiment=cartpole_lfcs learner.replay_episodes=4 $D $S"
    "k4_none_lrK|experiment=cartpole_lfcs learner.replay_episodes=4 $S"
    "k4_vtrace_lrK|experiment=cartpole_lfcs learner.replay_episodes=4 $V $S"
    "k4_decoupled|experiment=cartpole_lfcs learner.replay_episodes=4 $D"
    "k2_decoupled_lrK|experiment=cartpole_lfcs learner.replay_episodes=2 $D $S"
    "k8_decoupled_lrK|experiment=cartpole_lfcs learner.replay_episodes=8 $D $S") ;;
  pong) iterations=600; conditions=(
    "k1|experiment=pong100_lfcs $D"
    "k4_decoupled_lrK|experiment=pong100_lfcs learner.replay_episodes=4 $D $S"
    "k4_decoupled_lrK_td|experiment=pong100_lfcs learner.replay_episodes=4 learner.critic=td $D $S"
    "k4_vtrace_lrK|experiment=pong100_lfcs learner.replay_episodes=4 $V $S"
    "k1_td|experiment=pong100_lfcs_critic_td $D"
    "k2_decoupled_lrK_td|experiment=pong100_lfcs learner.replay_episodes=2 learner.critic=td $D $S"
    "k8_decoupled_lrK_td|experiment=pong100_lfcs learner.replay_episodes=8 learner.critic=td $D $S") ;;
  *) echo "error: chain=$chain is not allowed: cartpole or pong" >&2; exit 2 ;;
esac
mkdir -p "$out"
for entry in "${conditions[@]}"; do
  name=${entry%%|*}; overrides=${entry#*|}
  echo "$(date -u +%FT%TZ) start $name: $overrides"
  # shellcheck disable=SC2086
  $PYTHON scripts/train.py $overrides num_agents=4 iterations=$iterations progress=false log_images_every=0 \
    run_dir="$out/$name" > "$out/$name.log" 2>&1 || { echo "FAILED $name (see $out/$name.log)"; exit 1; }
  echo "$(date -u +%FT%TZ) done  $name: $(tail -1 "$out/$name.log")"
done
