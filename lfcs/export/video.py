"""Evaluation videos: the env's frames with pi_ref's action probabilities drawn as bars beside them, as MP4.

Frame k of an episode is the screen the agent saw when it chose action k; the bars are pi_ref(. | obs_0..k) and
the chosen action's bar is outlined. Frames are written with imageio's ffmpeg plugin (imageio-ffmpeg bundles
the ffmpeg binary).
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image, ImageDraw

SCALE = 2  # screen pixels per emulator pixel
PANEL_WIDTH = 200  # pixels of the probability panel right of the screen
MACRO_BLOCK = 16  # H.264 encodes 16 x 16 blocks: pad the canvas to a multiple, so ffmpeg does not rescale
BAR_COLOURS = ((160, 160, 160), (80, 200, 80), (220, 80, 80), (80, 120, 220), (220, 200, 60), (200, 80, 200))


class FrameRecorder(gym.Wrapper):
    """Keeps ``env.render()`` after every reset and step while ``recording`` is on; the env is unchanged."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.recording = False
        self.frames: list[np.ndarray] = []

    def reset(self, **kwargs):
        result = self.env.reset(**kwargs)
        self.frames = []
        self._keep()
        return result

    def step(self, action):
        result = self.env.step(action)
        self._keep()
        return result

    def _keep(self) -> None:
        if self.recording:
            frame = self.env.render()
            if frame is None:
                raise ValueError("the env rendered nothing: it needs render_mode='rgb_array' for a video")
            self.frames.append(np.asarray(frame, dtype=np.uint8))


def canvas_size(frame_shape: tuple[int, ...]) -> tuple[int, int]:
    """(height, width) of a composed video frame for screens of ``frame_shape``."""
    height, width = frame_shape[0] * SCALE, frame_shape[1] * SCALE + PANEL_WIDTH
    return -(-height // MACRO_BLOCK) * MACRO_BLOCK, -(-width // MACRO_BLOCK) * MACRO_BLOCK


def compose_frame(
    frame: np.ndarray, probs: np.ndarray, action: int, action_names: list[str], caption: str
) -> np.ndarray:
    """One video frame: the screen scaled by SCALE, and one bar per action with its probability."""
    height, width = canvas_size(frame.shape)
    screen = Image.fromarray(frame).resize((frame.shape[1] * SCALE, frame.shape[0] * SCALE), Image.NEAREST)
    canvas = Image.new("RGB", (width, height))
    canvas.paste(screen, (0, 0))
    draw = ImageDraw.Draw(canvas)
    left, top, bar_max = frame.shape[1] * SCALE + 10, 40, PANEL_WIDTH - 20
    draw.text((left, 10), caption, fill=(255, 255, 255))
    row = 50
    for o, (p, name) in enumerate(zip(probs, action_names)):
        y = top + o * row
        colour = BAR_COLOURS[o % len(BAR_COLOURS)]
        draw.text((left, y), f"{name} {p:.2f}", fill=(255, 255, 255))
        draw.rectangle((left, y + 15, left + bar_max, y + 35), outline=(90, 90, 90))
        draw.rectangle((left, y + 15, left + round(float(p) * bar_max), y + 35), fill=colour)
        if o == action:
            draw.rectangle((left - 3, y + 12, left + bar_max + 3, y + 38), outline=(255, 255, 255), width=2)
    return np.asarray(canvas)


def action_names(env: gym.Env, num_actions: int) -> list[str]:
    names = getattr(env.unwrapped, "action_names", None)
    return list(names) if names is not None and len(names) == num_actions else [str(o) for o in range(num_actions)]


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=MACRO_BLOCK) as writer:
        for frame in frames:
            writer.append_data(frame)
