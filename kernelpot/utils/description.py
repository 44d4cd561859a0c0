"""The versioned JSON descriptions that baselines and charge models store in ``.kpot`` headers."""

from __future__ import annotations

__all__ = ["check_description"]


def check_description(spec, kind: str, what: str, version: int = 1) -> dict:
    """Refuse a description of another kind or of a version this kernelpot cannot read, before reading it.

    Parameters
    ----------
    spec : object
        What a file's header holds (a dict from JSON, or anything a hostile file put there).
    kind : str
        The ``"kind"`` it must name, e.g. ``"coulomb"``.
    what : str
        The object, for the message, e.g. ``"Coulomb baseline"``.
    version : int, default=1
        The ``"version"`` this kernelpot reads.

    Returns
    -------
    dict
        ``spec``.

    Raises
    ------
    ValueError
        ``spec`` is not a dict of that kind, or has another version (a newer kernelpot wrote it).
    """
    if not isinstance(spec, dict) or spec.get("kind") != kind:
        found = spec.get("kind") if isinstance(spec, dict) else spec
        raise ValueError(f"not a {what} description: kind {found!r} (expected {kind!r})")
    if spec.get("version") != version:
        raise ValueError(f"{what} description version {spec.get('version')!r} is not supported (this kernelpot "
                         f"reads version {version}); upgrade kernelpot")
    return spec
