"""``kernelpot serve``: an i-PI client. Driven by i-PI itself (short NVT), and by a server that vanishes mid-run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.io import read, write

from kernelpot.cli import main
from kernelpot.potential import GAPCalculator, load_gap_xml
from kernelpot.potential.ipi import ServeResult, parse_address, serve_ipi

MODEL = Path(__file__).parent / "reference" / "gap_xml" / "si.xml"

INPUT = """<simulation verbosity='low' safe_stride='1000'>
  <output prefix='sim'>
    <properties stride='1' filename='out'> [ step, temperature{{kelvin}}, potential ] </properties>
    <trajectory filename='pos' stride='1' format='ase'> positions </trajectory>
    <trajectory filename='for' stride='1' format='ase'> forces </trajectory>
  </output>
  <total_steps> {steps} </total_steps>
  <prng><seed>31415</seed></prng>
  <ffsocket name='kernelpot' mode='unix' pbc='true'><address>{address}</address></ffsocket>
  <system>
    <initialize nbeads='1'>
      <file mode='ase'> init.extxyz </file>
      <velocities mode='thermal' units='kelvin'> 300 </velocities>
    </initialize>
    <forces><force forcefield='kernelpot'/></forces>
    <ensemble><temperature units='kelvin'> 300 </temperature></ensemble>
    <motion mode='dynamics'>
      <dynamics mode='nvt'>
        <timestep units='femtosecond'> 1.0 </timestep>
        <thermostat mode='langevin'><tau units='femtosecond'> 50 </tau></thermostat>
      </dynamics>
    </motion>
  </system>
</simulation>
"""


def silicon():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.05, seed=1)
    return atoms


def test_short_ipi_nvt_driven_by_kernelpot_gets_the_calculators_energies_and_forces(tmp_path):
    pytest.importorskip("ipi")
    if shutil.which("i-pi") is None:
        pytest.skip("the i-pi command is not on PATH (pip install ipi)")
    steps, name = 5, f"kernelpot_test_{os.getpid()}"
    write(tmp_path / "init.extxyz", silicon())
    (tmp_path / "input.xml").write_text(INPUT.format(steps=steps, address=name))
    with open(tmp_path / "ipi.log", "w") as log:
        server = subprocess.Popen(["i-pi", "input.xml"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    received = []

    def record(step, atoms, energy, forces, virial):
        received.append((atoms.positions.copy(), atoms.cell.array.copy(), energy, forces.copy(), virial.copy()))

    try:
        model = load_gap_xml(MODEL)
        result = serve_ipi(GAPCalculator(model, uncertainty=False), silicon(), f"unix:{name}", connect_timeout=120,
                           timeout=300, on_step=record)
        assert server.wait(timeout=120) == 0, (tmp_path / "ipi.log").read_text()[-2000:]
    finally:
        if server.poll() is None:
            server.kill()
    # i-PI evaluates the initial structure and then once per step
    assert result.steps == steps + 1 and result.reason in ("exit", "closed")
    properties = np.loadtxt(tmp_path / "sim.out", ndmin=2)
    positions = read(tmp_path / "sim.pos_0.extxyz", ":")
    forces = read(tmp_path / "sim.for_0.extxyz", ":")
    # i-PI writes steps 0 .. steps (the structure of every force call it made)
    assert len(properties) == len(positions) == len(forces) == steps + 1
    assert np.all(properties[1:, 1] > 0) and not np.allclose(received[0][0], received[-1][0])  # it moved
    fresh = silicon()
    fresh.calc = GAPCalculator(model, uncertainty=False)
    for step in range(steps + 1):
        mine_positions, cell, energy, mine_forces, virial = received[step]
        # i-PI writes what it sent (positions) and what it got (potential in Hartree, forces in its eV/Å),
        # 8-9 significant digits; i-PI's Bohr and eV differ from ASE's by ~1e-7 relative.
        shift = (positions[step].positions - mine_positions) @ np.linalg.inv(cell)
        np.testing.assert_allclose((shift - np.round(shift)) @ cell, 0.0, atol=1e-6)  # equal up to lattice vectors
        assert abs(properties[step, 2] * units.Ha - energy) < 1e-6
        np.testing.assert_allclose(forces[step].get_forces(), mine_forces, atol=1e-6)
        # and those are the calculator's numbers at those positions
        fresh.cell, fresh.positions = cell, mine_positions
        assert abs(fresh.get_potential_energy() - energy) < 1e-9
        np.testing.assert_allclose(fresh.get_forces(), mine_forces, atol=1e-9)
        np.testing.assert_allclose(-fresh.get_volume() * fresh.get_stress(voigt=False), virial, atol=1e-9)


# ------------------------------------------------------------------------------------ a server that vanishes
class VanishingServer:
    """An i-PI-protocol server (ASE's IPIProtocol) that answers ``full`` exchanges, then closes.

    ``how``: "between" closes after the last full exchange; "mid-message" sends POSDATA and half a cell first.
    """

    def __init__(self, full, how):
        from ase.calculators.socketio import IPIProtocol

        self.full, self.how, self.protocol_class = full, how, IPIProtocol
        self.listener = socket.socket(socket.AF_INET)
        self.listener.bind(("localhost", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.energies, self.error = [], None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        connection, _ = self.listener.accept()
        protocol = self.protocol_class(connection)
        atoms = silicon()
        try:
            for step in range(self.full):
                atoms.rattle(0.01, seed=step)
                self.energies.append(protocol.calculate(atoms.positions, atoms.cell.array)["energy"])
            if self.how == "mid-message":
                assert protocol.status() == "READY"
                protocol.sendmsg("POSDATA")
                connection.sendall(np.zeros(4).tobytes())  # half of the cell, then gone
        except Exception as error:  # noqa: BLE001 - the client hung up (a refused structure): recorded, not raised
            self.error = error
        finally:
            connection.close()
            self.listener.close()


@pytest.mark.parametrize("how, reason", [("between", "closed"), ("mid-message", "closed mid-message")])
def test_a_server_closing_mid_run_ends_serving_cleanly_with_the_step_count(how, reason):
    server = VanishingServer(3, how)
    calculator = GAPCalculator(load_gap_xml(MODEL), uncertainty=False)
    result = serve_ipi(calculator, silicon(), f"localhost:{server.port}", connect_timeout=10, timeout=30)
    server.thread.join(10)
    assert result == ServeResult(3, reason)
    assert len(server.energies) == 3 and np.all(np.isfinite(server.energies))
    assert "answered 3 force calls" in str(result)


def test_serve_command_reports_the_count_and_refuses_bad_input(tmp_path, capsys):
    write(tmp_path / "init.extxyz", silicon())
    server = VanishingServer(2, "between")
    assert main(["serve", str(MODEL), "--ipi", f"localhost:{server.port}", "--structure",
                 str(tmp_path / "init.extxyz"), "--log", str(tmp_path / "serve.log")]) == 0
    server.thread.join(10)
    assert "answered 2 force calls; stopped because the server closed the connection" in capsys.readouterr().out
    assert len((tmp_path / "serve.log").read_text().splitlines()) == 2
    assert main(["serve", str(MODEL), "--ipi", "localhost", "--structure", str(tmp_path / "init.extxyz")]) == 2
    assert "host:port" in capsys.readouterr().err
    assert main(["serve", str(MODEL), "--ipi", "unix:x", "--structure", str(tmp_path / "absent.xyz")]) == 2
    assert "absent.xyz" in capsys.readouterr().err
    start = time.monotonic()
    assert main(["serve", str(MODEL), "--ipi", f"unix:nobody_{os.getpid()}", "--structure",
                 str(tmp_path / "init.extxyz"), "--connect-timeout", "0.5", "--quiet"]) == 2
    assert "no i-PI server" in capsys.readouterr().err and time.monotonic() - start < 30


def test_wrong_atom_count_is_named():
    server = VanishingServer(1, "between")
    with pytest.raises(ValueError, match="i-PI sent 8 atoms, the template structure has 16"):
        serve_ipi(GAPCalculator(load_gap_xml(MODEL), uncertainty=False), silicon().repeat((2, 1, 1)),
                  f"localhost:{server.port}", connect_timeout=10, timeout=30)
    server.thread.join(10)


def test_parse_address():
    assert parse_address("localhost:31415") == {"host": "localhost", "port": 31415}
    assert parse_address(":31415") == {"host": "localhost", "port": 31415}
    assert parse_address("unix:driver") == {"unixsocket": "driver"}
    for bad in ("31415", "host:port", "unix:", "unix:/tmp/x", "host:70000"):
        with pytest.raises(ValueError):
            parse_address(bad)
