"""Real test videos made with the FFmpeg of the imageio-ffmpeg wheel."""

from __future__ import annotations

import subprocess
from pathlib import Path

from activities.ffmpeg import ffmpeg_exe


def make_video(path: Path, *, width: int, height: int, seconds: float, quiet: tuple[float, float]) -> Path:
    """A test-pattern video with a 440 Hz tone; during ``quiet`` the picture is black and the sound silent,
    so analysis must find one black and one silent stretch and the two scene cuts around them."""
    start, end = quiet
    video = f"testsrc2=size={width}x{height}:rate=25:duration={seconds}"
    audio = f"sine=frequency=440:sample_rate=44100:duration={seconds}"
    quiet_picture = f"drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='between(t,{start},{end})'"
    quiet_sound = f"volume=volume=0:enable='between(t,{start},{end})'"
    args = [
        "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio,
        "-vf", quiet_picture, "-af", quiet_sound,
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-shortest", str(path),
    ]  # fmt: skip
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=300)
    return path
