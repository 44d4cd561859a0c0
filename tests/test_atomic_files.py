"""Atomic saves: a killed save's temporary is removed by the next save; new files honour the umask (issue 18, item 4)."""

import os
import signal
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kernelpot.active.checkpoint import Checkpoint
from kernelpot.potential.model_file import load_model_file, save_model_file
from kernelpot.utils.files import atomic_write, stale_temporaries

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _killed_save(path):
    """Start a save of ``path`` in another process, SIGKILL it half-way, return its temporary file."""
    script = textwrap.dedent(f"""
        import sys, time
        from kernelpot.utils.files import atomic_write
        def write(stream):
            stream.write(b"half a model")
            stream.flush()
            print("writing", flush=True)
            time.sleep(600)
        atomic_write({str(path)!r}, write)
    """)
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert process.stdout.readline().strip() == "writing"
        leftovers = list(path.parent.glob(f".{path.name}.*.tmp"))
        assert stale_temporaries(path) == []  # its writer is alive: not stale yet
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return leftovers


def test_next_save_removes_what_a_killed_save_left(tmp_path):
    path = tmp_path / "m.kpot"
    save_model_file(path, {}, {"a": np.ones(3)})
    leftovers = _killed_save(path)
    assert len(leftovers) == 1 and leftovers[0].exists()
    assert stale_temporaries(path) == leftovers
    old_style = tmp_path / ".m.kpot.k3j_x9a1.tmp"  # written before temporaries carried a process id
    old_style.write_bytes(b"x")
    other = tmp_path / ".other.kpot.123.abc.tmp"  # another file's: not ours to remove
    other.write_bytes(b"x")
    save_model_file(path, {}, {"a": np.zeros(3)})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.kpot.123.abc.tmp", "m.kpot"]
    np.testing.assert_array_equal(load_model_file(path)[1]["a"], np.zeros(3))


def test_temporary_of_a_running_save_is_kept(tmp_path):
    path = tmp_path / "state.json"
    live = tmp_path / f".state.json.{os.getpid()}.abcd.tmp"  # this process is alive
    live.write_bytes(b"{}")
    atomic_write(path, b"{}")
    assert live.exists()


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_follow_the_umask(tmp_path, umask_027):
    model = save_model_file(tmp_path / "m.kpot", {}, {"a": np.ones(2)})
    checkpoint = Checkpoint(tmp_path / "run")
    checkpoint.save_state({"iteration": 0})
    plain = tmp_path / "plain"
    plain.write_text("x")  # what a normal file gets
    assert _mode(model) == _mode(checkpoint.state_path) == _mode(plain) == 0o640


def test_replacing_a_file_keeps_its_permissions(tmp_path, umask_027):
    path = save_model_file(tmp_path / "m.kpot", {}, {"a": np.ones(2)})
    path.chmod(0o604)
    save_model_file(path, {}, {"a": np.zeros(2)})
    assert _mode(path) == 0o604


def test_failed_write_leaves_no_temporary_and_the_old_file(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write(path, b"old")

    def fail(stream):
        stream.write(b"new")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_a_figure_that_fails_to_render_leaves_the_previous_png(tmp_path):
    """save_figure (learning curves, RDF/MSD plots): a PNG is whole or absent, never half written."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kernelpot.utils.files import save_figure

    figure, axes = plt.subplots()
    axes.plot([1, 2], [3, 4])
    path = save_figure(figure, tmp_path / "curve.png")
    before = path.read_bytes()
    assert before.startswith(b"\x89PNG")
    figure.savefig = lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("renderer died"))
    with pytest.raises(RuntimeError, match="renderer died"):
        save_figure(figure, path)
    plt.close(figure)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png"]


def test_a_missing_folder_is_named_not_a_temporary_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="the folder .*missing.* does not exist") as error:
        atomic_write(tmp_path / "missing" / "model.kpot", b"data")
    assert ".tmp" not in str(error.value)
