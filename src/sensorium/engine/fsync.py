"""Durability helpers shared by the log, blocks and checkpoints: fsync a directory or a tree."""

from __future__ import annotations

import os


def fsync_dir(path: str) -> None:
    """Makes the names in directory ``path`` (creations, renames, removals) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: str) -> None:
    """fsyncs every file directly in ``path``, then the directory itself."""
    for name in os.listdir(path):
        with open(os.path.join(path, name), "rb") as f:
            os.fsync(f.fileno())
    fsync_dir(path)
