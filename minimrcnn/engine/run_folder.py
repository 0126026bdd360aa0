"""The run folder (`--out`): made writable or refused in one line, and held by one run at a time.

Two runs writing one folder interleave their `metrics.jsonl` and overwrite each other's checkpoint, and
both exit 0. So a run takes the folder's lock file, `.lock`, for as long as it runs: an exclusive `flock`
on it (the kernel drops it when the process ends, however it ends) and, inside it, the owner's pid, host
and start time, for the message that refuses a second run. A lock file whose lock nobody holds was left by
a run that died (SIGKILL, a lost node): it is taken over, with a note naming the dead owner, and the
checkpoint that run had half written (a full disk, a kill mid-write) is removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from minimrcnn.errors import UserError

LOCK_NAME = ".lock"


class RunFolderError(UserError):
    """The run folder cannot be used: not a folder, not writable, or in use by another run."""


def prepare(out: str | Path, flag: str = "--out") -> Path:
    """Create `out` (and its parents) and check that files can be written there; else one line."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{flag} {out}: is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        why = e.strerror or type(e).__name__
        if isinstance(e, (FileExistsError, NotADirectoryError)):
            why = "a part of this path is a file, not a folder"
        raise RunFolderError(f"{flag} {out}: cannot write there ({why})") from None
    return out


@contextlib.contextmanager
def locked(out: str | Path, flag: str = "--out", note: Callable[[str], None] = print) -> Iterator[Path]:
    """Hold `out`'s lock while the block runs (prepare(out) first). Another live run's lock: RunFolderError.
    A stale lock file (its owner died) is taken over; `note` says so in one line."""
    out = prepare(out, flag)
    path = out / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = _describe(_read(fd))
            os.close(fd)
            raise RunFolderError(
                f"{flag} {out}: another run is using this folder ({owner}); wait for it to "
                f"finish or choose another {flag}"
            ) from None
        # the file may have been removed (its owner finished) between our open and our flock: start again
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        previous = _read(fd)
        if previous:
            note(f"note: took over {path}, left by a run that is no longer running ({_describe(previous)})")
        from minimrcnn.engine.checkpoint import remove_stale_temporaries

        for tmp in remove_stale_temporaries(out / "checkpoint.pt"):  # a dead run's half-written checkpoint
            note(f"note: removed {tmp}, a checkpoint that a run which is no longer running did not finish")
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        yield out
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # (while still holding the lock: a run waiting on this inode starts again)
        os.close(fd)  # releases the flock


def _read(fd: int) -> dict:
    try:
        owner = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        return {"pid": "?", "host": "?"}
    return owner if isinstance(owner, dict) else {"pid": "?", "host": "?"}


def _describe(owner: dict) -> str:
    if not owner:
        return "its owner is starting"
    since = f", since {owner['started']}" if owner.get("started") else ""
    return f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}{since}"
