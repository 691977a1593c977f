"""Environments of lfcs, registered with gymnasium on import."""

from gymnasium.envs.registration import register, registry

PONG100_ID = "lfcs/Pong100-v0"
MASKED_CARTPOLE_ID = "lfcs/MaskedCartPole-v0"
# POPGym tasks (envs/popgym_envs.py); popgym is imported only when one of them is built. Each id's step limit is
# POPGym's own episode length, so that lfcs's episode_horizon finds it (POPGym registers no limits).
POPGYM_IDS = {
    "lfcs/PopGymPositionOnlyCartPoleEasy-v0": ("PositionOnlyCartPole", 200),
    "lfcs/PopGymRepeatPreviousEasy-v0": ("RepeatPrevious", 51),
    "lfcs/PopGymCountRecallEasy-v0": ("CountRecall", 51),
}

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

for _id, (_name, _steps) in POPGYM_IDS.items():
    if _id not in registry:
        register(id=_id, entry_point=f"envs.popgym_envs:{_name}", max_episode_steps=_steps)
