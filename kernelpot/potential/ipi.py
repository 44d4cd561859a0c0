"""Serve a kernelpot potential to i-PI (and to codes that speak its socket protocol: LAMMPS ``fix ipi``, CP2K).

i-PI runs the dynamics (path integrals, thermostats, replica exchange) and asks
a *client* for energies, forces and virials at the positions it sends.
:func:`serve_ipi` is such a client: it connects through ASE's
:class:`~ase.calculators.socketio.SocketClient` (TCP ``host:port`` or a UNIX
socket ``/tmp/ipi_<name>``, as i-PI names them), and answers with an ASE
calculator (:class:`~kernelpot.potential.calculator.GAPCalculator`) on a
template structure that gives the species (i-PI sends only positions and the
cell). Units are converted by ASE's i-PI protocol (Bohr/Hartree on the wire).

The exchange follows the i-PI protocol (``STATUS`` -> ``READY``/``HAVEDATA``,
``POSDATA``, ``GETFORCE`` -> ``FORCEREADY``, ``EXIT``); the loop is written
here rather than taken from ``SocketClient.run`` so that the number of force
calls actually delivered is known and a server that disappears mid-run (the
socket closes, even in the middle of a message) ends the client cleanly with
that count instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

__all__ = ["ServeResult", "parse_address", "serve_ipi"]


@dataclasses.dataclass
class ServeResult:
    """How a serving session ended.

    Attributes
    ----------
    steps : int
        Force calls answered (energies, forces and virial sent to i-PI).
    reason : str
        ``"exit"`` (i-PI sent EXIT), ``"closed"`` (the server closed the
        connection between messages, as i-PI does at the end of a run),
        ``"closed mid-message"`` (it vanished during an exchange: the last
        request was not answered), ``"timed out"`` (nothing arrived within
        the socket timeout), ``"interrupted"`` (Ctrl-C) or ``"max steps"``.
    """

    steps: int
    reason: str

    def __str__(self):
        why = {"exit": "i-PI sent EXIT", "closed": "the server closed the connection",
               "closed mid-message": "the connection closed in the middle of an exchange",
               "interrupted": "interrupted", "max steps": "the step limit was reached",
               "timed out": "i-PI sent nothing within the socket timeout"}.get(self.reason, self.reason)
        return f"answered {self.steps} force call{'s' if self.steps != 1 else ''}; stopped because {why}"


def parse_address(address: str) -> dict:
    """``"host:port"``, ``":port"`` (localhost) or ``"unix:name"`` -> keyword arguments of ``SocketClient``.

    A UNIX socket ``name`` is the ``<address>`` of i-PI's ``ffsocket mode="unix"``; both i-PI and ASE
    open ``/tmp/ipi_<name>``.
    """
    if not isinstance(address, str) or not address:
        raise ValueError(f"i-PI address must be 'host:port' or 'unix:name'; got {address!r}")
    if address.startswith("unix:"):
        name = address[len("unix:"):]
        if not name or "/" in name:
            raise ValueError(f"UNIX socket name must be a plain name (i-PI opens /tmp/ipi_<name>); got {name!r}")
        return {"unixsocket": name}
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"i-PI address must be 'host:port' (port 1-65535) or 'unix:name'; got {address!r}")
    return {"host": host or "localhost", "port": int(port)}


def _connect(address: str, connect_timeout: float, timeout):
    """A connected ``SocketClient``, retrying while the server is not listening yet."""
    from ase.calculators.socketio import SocketClient

    keywords = parse_address(address)
    deadline = time.monotonic() + connect_timeout
    while True:
        try:
            return SocketClient(timeout=timeout, **keywords)
        except (ConnectionRefusedError, FileNotFoundError) as error:
            if time.monotonic() >= deadline:
                raise ConnectionError(f"no i-PI server at {address} after {connect_timeout:g} s "
                                      f"({type(error).__name__}); start i-PI first") from None
            time.sleep(0.2)


def serve_ipi(calculator, atoms, address: str, *, connect_timeout: float = 60.0, timeout=None,
              max_steps: int | None = None, on_step=None) -> ServeResult:
    """Answer i-PI's force requests with ``calculator`` until it stops.

    Parameters
    ----------
    calculator : ase.calculators.calculator.Calculator
        E.g. ``GAPCalculator(model, uncertainty=False)``.
    atoms : ase.Atoms
        Template with the species (and pbc) of i-PI's system, atoms in i-PI's
        order; its positions and cell are overwritten by i-PI's.
    address : str
        ``"host:port"`` or ``"unix:name"`` (:func:`parse_address`).
    connect_timeout : float, default=60
        Seconds to keep retrying while no server listens.
    timeout : float or None, default=None
        Socket timeout once connected (None: wait as long as i-PI takes).
    max_steps : int or None, default=None
        Stop after answering this many force calls.
    on_step : callable or None
        ``on_step(step, atoms, energy, forces, virial)`` after each answer
        (eV, eV/Å, eV), e.g. for a log.

    Returns
    -------
    ServeResult
        Force calls answered and why serving ended. A server that closes
        the connection, even mid-message, ends serving normally.
    """
    from ase.calculators.socketio import SocketClosed

    if max_steps is not None and (isinstance(max_steps, bool) or int(max_steps) < 1):
        raise ValueError(f"`max_steps` must be None or an integer >= 1; got {max_steps!r}")
    atoms = atoms.copy()
    atoms.calc = calculator
    use_stress = bool(atoms.pbc.all())
    client = _connect(address, connect_timeout, timeout)
    protocol, state, steps = client.protocol, "READY", 0
    energy = forces = virial = None
    try:
        while True:
            try:
                message = protocol.recvmsg()
            except (SocketClosed, ConnectionError):
                return ServeResult(steps, "closed")
            except TimeoutError:
                return ServeResult(steps, "timed out")
            try:
                if message == "EXIT":
                    return ServeResult(steps, "exit")
                if message == "STATUS":
                    protocol.sendmsg(state)
                elif message == "INIT":
                    protocol.recvinit()
                    state = "READY"
                elif message == "POSDATA":
                    cell, _, positions = protocol.recvposdata()
                    if len(positions) != len(atoms):
                        raise ValueError(f"i-PI sent {len(positions)} atoms, the template structure has "
                                         f"{len(atoms)}: give the structure i-PI was started with")
                    atoms.cell[:] = cell
                    atoms.positions[:] = positions
                    energy = atoms.get_potential_energy()
                    forces = atoms.get_forces()
                    virial = -atoms.get_volume() * atoms.get_stress(voigt=False) if use_stress else np.zeros((3, 3))
                    state = "HAVEDATA"
                elif message == "GETFORCE":
                    if state != "HAVEDATA":
                        raise ValueError("i-PI asked for forces before sending positions (protocol error)")
                    protocol.sendforce(energy, forces, virial)
                    state, steps = "READY", steps + 1
                    if on_step is not None:
                        on_step(steps, atoms, energy, forces, virial)
                    if max_steps is not None and steps >= max_steps:
                        return ServeResult(steps, "max steps")
                else:
                    raise ValueError(f"unknown i-PI message {message!r}")
            except (SocketClosed, ConnectionError, TimeoutError):
                return ServeResult(steps, "closed mid-message")
    except KeyboardInterrupt:
        return ServeResult(steps, "interrupted")
    finally:
        client.close()
