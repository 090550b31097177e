"""Files the sandbox's Python services write for sandbox.py and the tests: pid files and ready files.

Shared by aws_emulator.py and eks_authn.py (run as scripts from this directory, so a plain import finds it).
Both files are written atomically: a reader never sees a half-written one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_ready(path: Path, endpoint: str, host: str, port: int) -> None:
    """The ready file: ``{endpoint, host, port, pid}`` as JSON, written once the service listens."""
    write_atomic(path, json.dumps({"endpoint": endpoint, "host": host, "port": port, "pid": os.getpid()}) + "\n")
