"""Atomic file writes, shared by model files, checkpoints and the CLI.

A file is written to a hidden temporary file in the destination folder
(``.NAME.<pid>.<random>.tmp``), flushed and fsynced, then renamed over the
target, and the folder is fsynced: a reader sees the old file or the new
one, never a torn one, and after the call returns the new file survives a
power cut. A save killed before the rename leaves its temporary behind;
the next save of the same path removes it (temporaries of processes still
running are left alone, they may be saving right now).

The new file gets the permissions a plain ``open(path, "w")`` would give
it: those of the file it replaces, or ``0o666`` minus the umask.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "fsync_folder", "save_figure", "stale_temporaries"]


def _umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no way to read it without setting it elsewhere
    os.umask(mask)
    return mask


def _new_file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777  # replacing a file keeps its permissions, as open() would
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def stale_temporaries(path) -> list[Path]:
    """Temporary files of earlier saves of ``path`` whose writer is no longer running.

    Parameters
    ----------
    path : str or Path
        The destination a save wrote to.

    Returns
    -------
    list of Path
        ``.NAME.<pid>.*.tmp`` files of dead processes, and ``.NAME.*.tmp``
        files without a process id (written by older kernelpot versions).
    """
    path = Path(path)
    folder = path.parent
    stale = []
    try:
        candidates = list(folder.glob(f".{path.name}.*.tmp"))
    except OSError:
        return []
    for candidate in candidates:
        middle = candidate.name[len(path.name) + 2 : -len(".tmp")]
        pid_text = middle.split(".", 1)[0]
        if pid_text.isdigit() and "." in middle and _alive(int(pid_text)):
            continue
        stale.append(candidate)
    return stale


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a new or renamed file) to disk, where the OS allows it."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders: the rename is all we can do
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def atomic_write(path, data) -> Path:
    """Write a file atomically and durably.

    Parameters
    ----------
    path : str or Path
        Destination; its folder must exist.
    data : bytes or callable
        The content, or a function that writes it to the binary stream it
        is given (so large content need not be built in memory first).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    FileNotFoundError
        If the folder of ``path`` does not exist (named in the message).
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():  # else mkstemp's error names a temporary file the caller never asked for
        raise FileNotFoundError(f"cannot write {str(path)!r}: the folder {str(folder)!r} does not exist")
    for stale in stale_temporaries(path):
        stale.unlink(missing_ok=True)
    mode = _new_file_mode(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(handle, mode) if hasattr(os, "fchmod") else os.chmod(temporary, mode)
        with os.fdopen(handle, "wb") as stream:
            if callable(data):
                data(stream)
            else:
                stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_folder(folder)
    return path


def save_figure(figure, path, *, dpi: int = 120) -> Path:
    """Write a matplotlib figure atomically (:func:`atomic_write`): a killed run never leaves half a PNG.

    The format follows the file's suffix (``.png`` when it has none).
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    return atomic_write(path, lambda stream: figure.savefig(stream, format=fmt, dpi=dpi))

