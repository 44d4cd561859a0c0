"""Parse gap_fit's descriptor strings, so GAP users can move their commands over.

gap_fit describes a model as ``{term : term : ...}``, each term being a
descriptor name followed by ``key=value`` pairs, e.g.::

    {distance_2b cutoff=5.0 n_sparse=20 covariance_type=ard_se delta=2.0
     theta_uniform=1.0 sparse_method=uniform : soap l_max=6 n_max=8 ...}

Values may be quoted (``"..."``) or braced lists (``{1 8}``); a key without
a value (``compact_clusters``) is a logical flag set to true, as in gap_fit.
"""

from __future__ import annotations

__all__ = ["parse_gap_string", "parse_value", "parse_assignments"]


def parse_gap_string(text: str) -> list[tuple[str, dict]]:
    """Split a gap_fit ``--gap`` string into ``(descriptor_name, parameters)`` terms.

    Parameters
    ----------
    text : str
        The string, with or without the enclosing braces.

    Returns
    -------
    list of (str, dict)
        Parameter values are converted with :func:`parse_value`; keys are
        lower-cased, as gap_fit treats them case-insensitively.

    Raises
    ------
    ValueError
        Empty string, unbalanced braces or quotes, a term without a
        descriptor name, a token starting with ``=``, or a key given twice.
    """
    stripped = text.strip()
    if stripped.startswith("{") and _matching_brace(stripped, 0) == len(stripped) - 1:
        stripped = stripped[1:-1]
    terms = []
    for index, chunk in enumerate(_split_top_level(stripped, ":")):
        tokens = _tokenise(chunk)
        if not tokens:
            raise ValueError(f"term {index} of the --gap string is empty: {text!r}")
        name, *assignments = tokens
        if "=" in name:
            raise ValueError(f"term {index} ({chunk.strip()!r}) must start with a descriptor name, got {name!r}")
        parameters: dict = {}
        for token in assignments:
            key, sep, value = token.partition("=")
            if not key:
                raise ValueError(f"expected key=value in term {name!r}, got {token!r}")
            key = key.lower()
            if key in parameters:
                raise ValueError(f"parameter {key!r} given twice in term {name!r}")
            # a bare key is a logical flag set to true, as gap_fit reads `compact_clusters` or `add_species`
            parameters[key] = parse_value(value) if sep else True
        terms.append((name.lower(), parameters))
    if not terms:
        raise ValueError("the --gap string names no descriptor")
    return terms


def parse_assignments(text: str, what: str = "gap_fit command line") -> dict[str, str]:
    """Split gap_fit's ``key=value key={...} ...`` text into its assignments.

    This is how gap_fit reads its own command line (all arguments joined by
    spaces, so a braced value may span several shell words) and a
    ``config_file``: white space separates assignments outside braces and
    quotes; a key without ``=`` is a logical flag set to ``T``.

    Parameters
    ----------
    text : str
        The assignments, e.g. ``"at_file=train.xyz gap={soap cutoff=5.0} e0={Si:-158.5}"``.
    what : str, default="gap_fit command line"
        Where the text comes from, for error messages.

    Returns
    -------
    dict of str to str
        Lower-cased keys (gap_fit's keys are case-insensitive) to the values
        as written, outer quotes removed, braces kept.

    Raises
    ------
    ValueError
        Unbalanced braces or quotes, an empty key, or a key given twice.
    """
    assignments: dict[str, str] = {}
    for token in _tokenise(text):
        key, sep, value = token.partition("=")
        key = key.strip().lower()
        if not key:
            raise ValueError(f"{what}: {token!r} has no key before '='")
        if key in assignments:
            raise ValueError(f"{what}: {key!r} is given twice")
        value = value.strip() if sep else "T"
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        assignments[key] = value
    return assignments


def parse_value(value: str):
    """Convert a gap_fit value: braced list → list, then bool, int, float, else str."""
    value = value.strip()
    if value.startswith("{") and value.endswith("}"):
        return [parse_value(item) for item in value[1:-1].split()]
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]

    lowered = value.lower()
    if lowered in {"t", "true"}:
        return True
    if lowered in {"f", "false"}:
        return False
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value


def _matching_brace(text: str, start: int) -> int:
    depth = 0
    for position in range(start, len(text)):
        if text[position] == "{":
            depth += 1
        elif text[position] == "}":
            depth -= 1
            if depth == 0:
                return position
    raise ValueError(f"unbalanced braces in --gap string: {text!r}")


def _split_outside(text: str, is_separator) -> list[str]:
    """Split ``text`` at characters for which ``is_separator`` holds, outside quotes and braces."""
    parts, depth, quote, current = [], 0, None, []
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced braces in --gap string: {text!r}")
        elif depth == 0 and is_separator(char):
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if depth != 0 or quote:
        raise ValueError(f"unbalanced braces or quotes in --gap string: {text!r}")
    parts.append("".join(current))
    return parts


def _split_top_level(text: str, separator: str) -> list[str]:
    return _split_outside(text, lambda char: char == separator)


def _tokenise(chunk: str) -> list[str]:
    """Split on white space that is outside quotes and braces."""
    return [token for token in _split_outside(chunk, str.isspace) if token]
