"""Checkpoint folder of an active-learning run.

Layout (all files but the log written atomically, :func:`kernelpot.utils.files.atomic_write`):

``labelled.extxyz``
    Every structure labelled so far, with its oracle energy (eV) and forces
    (eV/Å) and ``info["active_key"]`` (pool index or MD step) and
    ``info["active_iteration"]``. This file is the record of what was paid
    for: a resumed run never relabels a structure found here.
``model.kpot``
    The current model (:func:`kernelpot.potential.serialization.save_model`);
    its metadata holds ``n_labelled``, the structures it was fitted to.
``log.jsonl``
    One JSON object per line and iteration (and one per oracle failure);
    a torn last line from a crash is ignored on reading.
``state.json``
    Loop counters and the explorer's state (written last in an iteration).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import ase.io

from ..utils.files import atomic_write
from ..utils.jsonable import jsonable

__all__ = ["Checkpoint"]


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

    def exists(self) -> bool:
        """Whether a run has already stored labels or state here."""
        return self.state_path.is_file() or self.labelled_path.is_file()

    # ----------------------------------------------------------- labelled data
    def save_labelled(self, atoms_list) -> None:
        buffer = io.StringIO()
        ase.io.write(buffer, list(atoms_list), format="extxyz")
        atomic_write(self.labelled_path, buffer.getvalue().encode())

    def load_labelled(self) -> list:
        if not self.labelled_path.is_file():
            return []
        return list(ase.io.read(self.labelled_path, index=":", format="extxyz"))

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

    # ------------------------------------------------------------------- state
    def save_state(self, state: dict) -> None:
        atomic_write(self.state_path, json.dumps(jsonable(state), indent=1, sort_keys=True).encode())

    def load_state(self) -> dict | None:
        if not self.state_path.is_file():
            return None
        return json.loads(self.state_path.read_text(encoding="utf-8"))
