"""Benchmark result rows, the machine description and the Markdown report."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import os
import platform
from pathlib import Path

from ..utils.files import atomic_write

PACKAGES = ("kernelpot", "numpy", "scipy", "numba", "ase", "scikit-learn", "dscribe", "qmllib", "skmatter",
            "quippy-ase", "torch-pme", "featomic", "vesin")


@dataclasses.dataclass
class Row:
    """One measurement of kernelpot and a peer on the same input.

    ``ratio`` is always ``kernelpot / peer``; ``better`` says which direction is
    good for kernelpot ("higher" for throughputs, "lower" for times, errors and memory).
    """

    peer: str
    task: str
    metric: str
    unit: str
    kernelpot: float
    peer_value: float
    better: str
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.kernelpot / self.peer_value if self.peer_value else float("nan")


class PeerUnavailable(RuntimeError):
    """A peer program or an input is not usable here; the runner records a skip with this reason."""


@dataclasses.dataclass
class Skip:
    """A case that did not run, and why (peer not installed, data missing, peer crashed)."""

    case: str
    reason: str


def machine() -> dict:
    """CPU model, core count, memory (GiB) and load average of this machine."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = float("nan")
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"cpu": model, "cores": os.cpu_count(), "memory_GiB": round(memory, 1), "load_average": round(load, 2),
            "python": platform.python_version(), "platform": platform.platform()}


def versions() -> dict:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _number(value: float) -> str:
    if value != value:  # NaN
        return "–"
    if abs(value) >= 1e4 or (0 < abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4g}"


def markdown(rows: list[Row], skips: list[Skip], *, quick: bool, seconds: float) -> str:
    """The RESULTS.md text: machine, versions, one table of ratios, skipped cases."""
    command = f"kernelpot bench{' --quick' if quick else ''}"
    return "\n".join(["# kernelpot against its peers", "", *_table(rows, skips, command, seconds)]) + "\n"


def update_section(text: str, cases: list[str], rows: list[Row], skips: list[Skip], *, quick: bool,
                   seconds: float) -> str:
    """``text`` (an existing report) with a section for a run of ``cases`` added, or replacing the section of
    an earlier run of the same cases: the other rows keep their own machine, load and versions."""
    command = f"kernelpot bench --only {','.join(cases)}{' --quick' if quick else ''} --update"
    title = f"## `{command}`"
    section = "\n".join([title, "", *_table(rows, skips, command, seconds)]) + "\n"
    parts = text.rstrip("\n").split("\n\n## ")
    head, sections = parts[0], ["## " + part for part in parts[1:]]
    sections = [old for old in sections if old.splitlines()[0] != title] + [section.rstrip("\n")]
    return "\n\n".join([head, *sections]) + "\n"


def _table(rows: list[Row], skips: list[Skip], command: str, seconds: float) -> list[str]:
    info, vers = machine(), versions()
    lines = [
        (f"Written by `{command}` on {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC in {seconds:.0f} s. "
         "Each row runs kernelpot and the peer on the same input in one invocation; ratio = kernelpot / peer."),
        "",
        (f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_GiB']} GiB, load average "
         f"{info['load_average']} at the end, Python {info['python']}, {info['platform']}."),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + ".",
        "",
        "| peer | task | metric | kernelpot | peer | kernelpot / peer | better | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.peer} | {r.task} | {r.metric} ({r.unit}) | {_number(r.kernelpot)} | "
                     f"{_number(r.peer_value)} | {r.ratio:.3g} | {r.better} | {r.note} |")
    if skips:
        lines += ["", "Skipped:", ""] + [f"- {s.case}: {s.reason}" for s in skips]
    return lines


def write_atomically(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode())
