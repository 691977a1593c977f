"""Environments of lfcs, registered with gymnasium on import."""

from gymnasium.envs.registration import register, registry

PONG100_ID = "lfcs/Pong100-v0"
MASKED_CARTPOLE_ID = "lfcs/MaskedCartPole-v0"

if PONG100_ID not in registry:
    # METHOD.md §4: 100 agent steps per episode.
    register(id=PONG100_ID, entry_point="envs.pong100:Pong100Env", max_episode_steps=100)

if MASKED_CARTPOLE_ID not in registry:
    # CartPole-v1's own limit and reward threshold.
    register(
        id=MASKED_CARTPOLE_ID,
        entry_point="envs.masked_cartpole:MaskedCartPoleEnv",
        max_episode_steps=500,
        reward_threshold=475.0,
    )
