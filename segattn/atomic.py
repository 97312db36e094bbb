"""Atomic file writes: every file segattn writes goes through `atomic_write`.

A file is written under a temporary name beside its destination and renamed onto it only once
it is complete (`os.replace`, atomic within one file system). A process killed mid-write leaves
at most a hidden `.<name>.<pid>-<random>.tmp` file, never a truncated file under the real name,
so "the output exists" always means "the output is complete" (`segattn infer` skips existing
outputs on that basis).
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from segattn.errors import InputError

TEMPORARY_SUFFIX = ".tmp"
# a folder that is missing, read-only or full: the user's to fix, so one line, not a traceback
USER_ERRNOS = (errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path` to write to; when the block ends without an error
    the file is renamed onto `path`, else it is removed. A folder that is missing, read-only or
    full is an InputError naming the file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as exc:
        if exc.errno not in USER_ERRNOS:
            raise
        raise InputError(f"{path}: cannot write the file ({exc.strerror}); expected a folder you can write to") from exc
    finally:
        temporary.unlink(missing_ok=True)


def writable_folder(folder: Path, subject: str, what: str = "the folder") -> None:
    """Creates `folder` (with its parents) where it is missing; an InputError led by `subject`
    when it cannot be created or written to, so that a command fails before its work, not at
    its first write."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{subject}: cannot create {what} ({exc.strerror})") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{subject}: {what} is not writable")


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Removes the temporary files that `atomic_write` left in `folder` when its process was
    killed (their process id no longer runs on this machine); returns how many."""
    removed = 0
    for path in Path(folder).glob(f".*{TEMPORARY_SUFFIX}"):
        pid = path.name.rsplit(".", 2)[-2].split("-")[0]
        if pid.isdigit() and not process_runs(int(pid)):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def process_runs(pid: int) -> bool:
    """Whether process `pid` runs on this machine: it exists and has not exited. A killed process
    whose parent has not reaped it yet (a zombie, e.g. a job's rank whose launcher died with it)
    still answers os.kill but writes nothing more."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return not exited(pid)


def exited(pid: int) -> bool:
    """Linux: process `pid` has exited and awaits its parent (state Z or X in /proc/<pid>/stat);
    False where /proc does not tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")  # the state follows the (command)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes `data` to `path` atomically."""
    with atomic_write(path) as temporary:
        temporary.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` (UTF-8) to `path` atomically."""
    write_bytes(path, text.encode())
