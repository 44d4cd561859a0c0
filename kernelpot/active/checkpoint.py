"""Checkpoint folder of an active-learning run.

Layout:

``labelled.extxyz``
    The label journal: every structure labelled so far, with its oracle
    energy (eV) and forces (eV/Å), ``info["active_key"]`` (pool index or
    MD step), ``info["active_iteration"]`` and ``info["active_source"]``
    (``"oracle"``, or ``"given"`` for initial structures that came with
    labels). A label is appended and fsynced the moment the oracle returns,
    before any refit: this file is the record of what was paid for, and a
    resumed run never relabels a structure found here. A frame torn by a
    crash in the middle of an append is dropped on reading and cut off
    before the next append.
``log.jsonl``
    One JSON object per line: ``"call"`` (written and fsynced *before*
    each oracle call, so a call cut short by a crash is still counted),
    ``"failure"`` and ``"iteration"``; a torn last line is ignored on
    reading.
``model.kpot``
    The model after the last completed iteration
    (:func:`kernelpot.potential.serialization.save_model`), written
    atomically. Its metadata holds the loop state (iteration, oracle calls,
    explorer, random generator): writing it is the commit of an iteration.
``state.json``
    A readable copy of that state (older checkpoints kept the state only
    here, and are still resumed from it).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import ase.io

from ..utils.files import atomic_write, fsync_folder
from ..utils.jsonable import jsonable

__all__ = ["Checkpoint"]


def _frames(data: bytes):
    """Split extxyz bytes into complete frames: ``(list of (start, end)), end of the last complete frame``."""
    spans, position = [], 0
    while position < len(data):
        first = data.find(b"\n", position)
        if first < 0:
            break
        try:
            n_atoms = int(data[position:first])
        except ValueError:
            break
        end = first
        for _ in range(n_atoms + 1):  # comment line, then one line per atom
            end = data.find(b"\n", end + 1)
            if end < 0:
                return spans, position
        spans.append((position, end + 1))
        position = end + 1
    return spans, position


class Checkpoint:
    """Reads and writes the files of one checkpoint folder (created if missing).

    Parameters
    ----------
    directory : str or Path
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.labelled_path = self.directory / "labelled.extxyz"
        self.model_path = self.directory / "model.kpot"
        self.log_path = self.directory / "log.jsonl"
        self.state_path = self.directory / "state.json"
        self._journal_end = None  # bytes of complete frames in labelled.extxyz, once read

    def exists(self) -> bool:
        """Whether a run has already stored labels, calls or state here."""
        return any(p.is_file() for p in (self.state_path, self.labelled_path, self.model_path, self.log_path))

    # --------------------------------------------------------- label journal
    def append_labelled(self, atoms):
        """Append one labelled structure to the journal and fsync it; return it as read back.

        The returned copy carries exactly what a resumed run will read
        (extxyz keeps 8 decimals), so a run and its resumption compute
        with the same numbers.
        """
        buffer = io.StringIO()
        ase.io.write(buffer, atoms, format="extxyz")
        data = buffer.getvalue().encode()
        if self._journal_end is None:
            self.load_labelled()
        new = not self.labelled_path.exists()
        handle = os.open(self.labelled_path, os.O_WRONLY | os.O_CREAT, 0o666)
        try:
            os.ftruncate(handle, self._journal_end)  # drop a frame torn by a crash
            os.lseek(handle, self._journal_end, os.SEEK_SET)
            view = memoryview(data)
            while view:
                view = view[os.write(handle, view):]
            os.fsync(handle)
        finally:
            os.close(handle)
        if new:
            fsync_folder(self.directory)
        self._journal_end += len(data)
        return ase.io.read(io.StringIO(data.decode()), format="extxyz")

    def load_labelled(self) -> list:
        """Every complete frame of the journal (a torn last frame is left out)."""
        if not self.labelled_path.is_file():
            self._journal_end = 0
            return []
        data = self.labelled_path.read_bytes()
        spans, self._journal_end = _frames(data)
        frames = []
        for index, (start, end) in enumerate(spans):
            try:
                frames.append(ase.io.read(io.StringIO(data[start:end].decode()), format="extxyz"))
            except Exception as error:  # a complete but unreadable frame: not a torn append
                raise ValueError(f"{self.labelled_path}: frame {index} cannot be read ({error}); the checkpoint "
                                 "is corrupt") from None
        return frames

    # ------------------------------------------------------------------- model
    def save_model(self, model, metadata: dict) -> None:
        from ..potential.serialization import save_model

        save_model(model, self.model_path, metadata=jsonable(metadata))

    def load_model(self):
        """The stored model, or None when there is none yet."""
        from ..potential.serialization import load_model

        return load_model(self.model_path) if self.model_path.is_file() else None

    # --------------------------------------------------------------------- log
    def append_log(self, record: dict) -> None:
        """Append one record and fsync it."""
        line = json.dumps(jsonable(record), sort_keys=True) + "\n"
        if self.log_path.is_file() and self.log_path.stat().st_size:
            with open(self.log_path, "rb") as stream:
                stream.seek(-1, os.SEEK_END)
                if stream.read(1) != b"\n":
                    line = "\n" + line  # end a line torn by a crash before appending
        with open(self.log_path, "a", encoding="utf-8") as stream:
            stream.write(line)
            stream.flush()
            os.fsync(stream.fileno())

    def read_log(self) -> list[dict]:
        if not self.log_path.is_file():
            return []
        records = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a crash
        return records

    def rewrite_log(self, records) -> None:
        """Replace the log by ``records`` (atomically)."""
        text = "".join(json.dumps(jsonable(r), sort_keys=True) + "\n" for r in records)
        atomic_write(self.log_path, text.encode())

    # ------------------------------------------------------------------- state
    def save_state(self, state: dict) -> None:
        atomic_write(self.state_path, json.dumps(jsonable(state), indent=1, sort_keys=True).encode())

    def load_state(self) -> dict | None:
        """The committed loop state: the model's metadata, or ``state.json`` of older checkpoints."""
        if self.model_path.is_file():
            from ..potential.model_file import load_model_file

            header, _ = load_model_file(self.model_path)
            state = header.get("metadata", {}).get("loop_state")
            if state is not None:
                return state
        if not self.state_path.is_file():
            return None
        return json.loads(self.state_path.read_text(encoding="utf-8"))
