"""Where a result came from: date, git commit, device name (for committed JSON results)."""
from __future__ import annotations

import datetime
import os
import subprocess
from typing import Optional

import torch


def git_commit() -> Optional[str]:
    """$FA3_COMMIT when set (a copy of the tree without .git), else `git rev-parse --short HEAD`."""
    if os.environ.get("FA3_COMMIT"):
        return os.environ["FA3_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def today() -> str:
    return datetime.date.today().isoformat()


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
