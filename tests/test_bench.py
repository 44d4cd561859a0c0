"""``kernelpot bench``: report contents, skips of missing peers, failures kept apart, a real case."""

import argparse

import numpy as np
import pytest

from kernelpot.bench import runner
from kernelpot.bench.results import PeerUnavailable, Row, Skip, markdown
from kernelpot.cli import build_parser


def _args(tmp_path, only, quick=True):
    return argparse.Namespace(quick=quick, only=only, output=tmp_path / "RESULTS.md")


def test_row_ratio_is_kernelpot_over_peer():
    row = Row("peer", "task", "throughput", "atoms/s", 30.0, 10.0, "higher")
    assert row.ratio == pytest.approx(3.0)
    assert np.isnan(Row("peer", "task", "t", "s", 1.0, 0.0, "lower").ratio)


def test_markdown_has_machine_versions_rows_and_skips():
    text = markdown([Row("dscribe", "SOAP", "throughput", "atoms/s", 2000.0, 1000.0, "higher", "parity 1e-12")],
                    [Skip("MBTR vs dscribe", "crashes")], quick=True, seconds=1.0)
    assert "| dscribe | SOAP | throughput (atoms/s) | 2000 | 1000 | 2 | higher | parity 1e-12 |" in text
    assert "Machine:" in text and "numba" in text and "- MBTR vs dscribe: crashes" in text


def test_missing_peer_is_skipped_and_a_crash_does_not_lose_other_rows(tmp_path, monkeypatch):
    def crashes(quick):
        raise RuntimeError("peer exploded")

    def unavailable(quick):
        raise PeerUnavailable("no data here")

    def works(quick):
        return [Row("fake", "works", "wall time", "s", 1.0, 4.0, "lower")]

    monkeypatch.setattr(runner, "CASES", {
        "missing": (("no_such_peer_module_xyz",), works, "missing peer"),
        "crash": (("numpy",), crashes, "crashing peer"),
        "unavailable": (("numpy",), unavailable, "unavailable input"),
        "ok": (("numpy",), works, "working case"),
    })
    assert runner.run(_args(tmp_path, ["missing", "crash", "unavailable", "ok"])) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| fake | works | wall time (s) | 1 | 4 | 0.25 | lower |" in text
    assert "- missing peer: no_such_peer_module_xyz is not installed" in text
    assert "- crashing peer: failed: RuntimeError: peer exploded" in text
    assert "- unavailable input: no data here" in text


def test_update_adds_or_replaces_a_section_and_keeps_the_other_rows(tmp_path, monkeypatch):
    def first(quick):
        return [Row("fake", "first", "wall time", "s", 1.0, 2.0, "lower")]

    def second(quick):
        return [Row("fake", "second", "wall time", "s", 3.0, 2.0, "lower")]

    monkeypatch.setattr(runner, "CASES", {"a": ((), first, "case a"), "b": ((), second, "case b")})
    runner.run(_args(tmp_path, ["a"]))
    update = argparse.Namespace(quick=False, only=["b"], output=tmp_path / "RESULTS.md", update=True)
    runner.run(update)
    runner.run(update)  # the same cases again: their section is replaced, not repeated
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.count("| fake | first |") == 1 and text.count("| fake | second |") == 1
    assert text.count("## `kernelpot bench --only b --update`") == 1
    assert text.count("Machine:") == 2   # each section says where it ran
    assert text.index("| fake | first |") < text.index("## `kernelpot bench --only b --update`")


def test_unknown_case_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"unknown benchmark case\(s\) \['nope'\]"):
        runner.run(_args(tmp_path, ["nope"]))


def test_a_bad_output_is_refused_before_any_case_runs(tmp_path, monkeypatch):
    def must_not_run(quick):
        raise AssertionError("a case ran")

    monkeypatch.setattr(runner, "CASES", {"a": ((), must_not_run, "case a")})
    for output, message in [(tmp_path / "missing" / "r.md", "does not exist"), (tmp_path, "is a folder")]:
        args = argparse.Namespace(quick=True, only=["a"], output=output)
        with pytest.raises(ValueError, match=f"--output .*{message}"):
            runner.run(args)


def test_cli_parses_bench_options(tmp_path):
    args = build_parser().parse_args(["bench", "--quick", "--only", "gpr,selection", "--output", str(tmp_path / "r.md")])
    assert args.quick and args.only == ["gpr", "selection"] and args.handler is runner.run


def test_gpr_case_matches_scikit_learn(tmp_path):
    pytest.importorskip("sklearn")
    runner.run(_args(tmp_path, ["gpr"]))
    text = (tmp_path / "RESULTS.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| scikit-learn"))
    lml_ours, lml_theirs = (float(v) for v in row.split("LML ")[1].split(";")[0].split(" vs "))
    assert lml_ours == pytest.approx(lml_theirs, rel=1e-6)


def test_interleaved_cpu_alternates_the_order_and_times_every_round():
    from kernelpot.bench.timing import interleaved_cpu

    order = []
    calls = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    samples = interleaved_cpu(calls, repeats=4, target=0.0)   # target 0: one call per timing
    assert {k: len(v) for k, v in samples.items()} == {"a": 4, "b": 4}
    assert all(t >= 0 for v in samples.values() for t in v)
    # two warm-up calls each (one plain, one timed to size the loop), then a b, b a, a b, b a
    assert order[4:] == ["a", "b", "b", "a", "a", "b", "b", "a"]


def test_frame_metrics_of_the_approximate_force_sigma():
    from kernelpot.bench.sigma_cases import frame_metrics

    rng = np.random.default_rng(0)
    exacts = [rng.uniform(0.01, 0.1, 20) for _ in range(6)]
    exacts[3][7] = 0.5                                             # the outlier frame
    rho_max, rank, kind, ratio, same, median, p95, rho = frame_metrics(exacts, exacts, list("abcdef"))
    assert (rho_max, rank, kind, ratio, same, median, p95, rho) == (1.0, 1, "d", 1.0, 1.0, 0.0, 0.0, 1.0)
    halved = [0.5 * e for e in exacts]                             # a uniform scale keeps every ranking
    assert frame_metrics(halved, exacts, list("abcdef"))[:5] == (1.0, 1, "d", 0.5, 1.0)
    assert frame_metrics(halved, exacts, list("abcdef"))[5] == pytest.approx(0.5)
    missed = [e.copy() for e in exacts]
    missed[3][7] = 0.01                                            # the estimate misses the outlier atom
    assert frame_metrics(missed, exacts, list("abcdef"))[1] > 1


def test_sigma_frames_start_with_the_calibration_cell():
    from kernelpot.bench.sigma_cases import sigma_frames

    frames = sigma_frames("si", quick=True)
    assert frames[0][0] == "bench" and len(frames[0][1]) == 216
    assert [k for k, _ in frames[-4:]] == ["one atom 0.67A", "vacancy", "compressed 5%", "rattled 0.15A"]
    assert len(frames[-3][1]) == 215
