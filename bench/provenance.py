"""What produced a result: package versions, hardware, git commit."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("numpy", "scipy", "pandas", "scikit-learn", "torch", "scoringrules", "matplotlib",
            "tabulate", "h5py", "tqdm")
REPO_ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> dict:
    """Commit hash and whether the code had uncommitted changes (None outside a git checkout).

    ``results/`` is left out of the check: a run writes there, and committed reference results being
    rewritten by the run itself says nothing about the code that produced them.
    """
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def environment() -> dict:
    """Package versions, interpreter, platform, CPU count, accelerator and git state."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "packages": versions,
        "git": git_commit(),
    }
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        env["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        env["cuda"] = None
    return env
