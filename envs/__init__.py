"""Environments of lfcs, registered with gymnasium on import."""

from gymnasium.envs.registration import register, registry

PONG100_ID = "lfcs/Pong100-v0"

if PONG100_ID not in registry:
    # METHOD.md §4: 100 agent steps per episode.
    register(id=PONG100_ID, entry_point="envs.pong100:Pong100Env", max_episode_steps=100)
