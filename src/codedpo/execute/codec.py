"""Plain-data codec for values crossing the sandbox boundary.

JSON, extended with single-key tag objects for the builtin types JSON lacks::

    {"$tuple": [...]}  {"$set": [...]}  {"$frozenset": [...]}  {"$dict": [[k, v], ...]}
    {"$bytes": "<base64>"}  {"$complex": [re, im]}  {"$float": "nan" | "inf" | "-inf"}
    {"$int": "0x..."} (integers of 2**256 and beyond)

Any other JSON object decodes to a dict with string keys. Encoding accepts *exact* builtin types
only (``type(v) is int``, not ``isinstance``): an ``int`` subclass or any object with its own
``__eq__`` cannot be encoded, so it can never be compared as if it were the right answer.

This file is also copied into the sandbox (the harness imports it), so it uses the stdlib only.
"""

from __future__ import annotations

import base64
import collections
import json
import math

_TAGS = ("$tuple", "$set", "$frozenset", "$dict", "$bytes", "$complex", "$float", "$int")
# Integers beyond this travel in hex: decimal conversion of a huge int is quadratic (HumanEval/83
# returns numbers with 10^5 digits), hex is linear.
_BIG = 2**256
_DICT_LIKE = (collections.Counter, collections.OrderedDict, collections.defaultdict)


class Unencodable(TypeError):
    """A value that is not plain builtin data."""


def encode(value, _depth: int = 0):
    """Turn plain builtin data into JSON-ready data; raise :class:`Unencodable` otherwise."""
    if _depth > 200:
        raise Unencodable("nesting deeper than 200")
    t = type(value)
    if t is int and (value >= _BIG or value <= -_BIG):
        return {"$int": hex(value)}
    if value is None or t is bool or t is int or t is str:
        return value
    if t is float:
        if math.isfinite(value):
            return value
        return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if t is list:
        return [encode(v, _depth + 1) for v in value]
    if t is tuple:
        return {"$tuple": [encode(v, _depth + 1) for v in value]}
    if t is set or t is frozenset:
        items = [encode(v, _depth + 1) for v in value]
        return {"$set" if t is set else "$frozenset": items}
    if t is dict:
        if all(type(k) is str for k in value) and not _looks_tagged(value):
            return {k: encode(v, _depth + 1) for k, v in value.items()}
        return {"$dict": [[encode(k, _depth + 1), encode(v, _depth + 1)] for k, v in value.items()]}
    if t in _DICT_LIKE:
        # Exactly these stdlib mappings (MBPP+'s references return Counter): compared as dicts.
        return encode(dict(value), _depth)
    if t is bytes:
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if t is complex:
        return {"$complex": [encode(value.real), encode(value.imag)]}
    raise Unencodable(f"{t.__module__}.{t.__qualname__} is not plain builtin data")


def _looks_tagged(d: dict) -> bool:
    return len(d) == 1 and next(iter(d)) in _TAGS


def decode(data):
    """Inverse of :func:`encode`. Raises ``ValueError`` on malformed tags."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if isinstance(data, dict):
        if _looks_tagged(data):
            tag, body = next(iter(data.items()))
            if tag == "$tuple":
                return tuple(decode(v) for v in _as_list(body, tag))
            if tag == "$set":
                return set(decode(v) for v in _as_list(body, tag))
            if tag == "$frozenset":
                return frozenset(decode(v) for v in _as_list(body, tag))
            if tag == "$dict":
                out = {}
                for pair in _as_list(body, tag):
                    if not isinstance(pair, list) or len(pair) != 2:
                        raise ValueError("$dict items must be [key, value] pairs")
                    out[decode(pair[0])] = decode(pair[1])
                return out
            if tag == "$bytes":
                if not isinstance(body, str):
                    raise ValueError("$bytes must be a base64 string")
                return base64.b64decode(body, validate=True)
            if tag == "$complex":
                re_, im = _as_list(body, tag)
                return complex(decode(re_), decode(im))
            if tag == "$int":
                if not isinstance(body, str) or len(body) > 10**7:
                    raise ValueError("$int must be a hex string")
                return int(body, 16)
            if tag == "$float":
                if body not in ("nan", "inf", "-inf"):
                    raise ValueError("$float must be nan, inf or -inf")
                return float(body)
        return {k: decode(v) for k, v in data.items()}
    return data


def _as_list(body, tag: str) -> list:
    if not isinstance(body, list):
        raise ValueError(f"{tag} must hold a list")
    return body


def _canonical(data):
    """Order-free form of encoded data: set elements and dict items sorted."""
    if isinstance(data, list):
        return [_canonical(v) for v in data]
    if isinstance(data, dict):
        if _looks_tagged(data):
            tag, body = next(iter(data.items()))
            if tag in ("$set", "$frozenset"):
                items = [_canonical(v) for v in body]
                return {tag: sorted(items, key=lambda v: json.dumps(v, sort_keys=True))}
            if tag == "$dict":
                pairs = [[_canonical(k), _canonical(v)] for k, v in body]
                return {tag: sorted(pairs, key=lambda kv: json.dumps(kv[0], sort_keys=True))}
            if tag == "$tuple":
                return {tag: [_canonical(v) for v in body]}
            return data
        return {k: _canonical(v) for k, v in data.items()}
    return data


def has_float(data) -> bool:
    """Does encoded data hold a float anywhere (where tolerance rules could apply)?"""
    if type(data) is float:
        return True
    if isinstance(data, list):
        return any(has_float(v) for v in data)
    if isinstance(data, dict):
        if "$float" in data or "$complex" in data:
            return True
        return any(has_float(v) for v in data.values())
    return False


def digest(data) -> str:
    """sha256 of encoded data in canonical form: equal digests <=> equal float-free values."""
    import hashlib

    text = json.dumps(_canonical(data), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def dumps(value) -> str:
    return json.dumps(encode(value), ensure_ascii=False, allow_nan=False)


def loads(text: str):
    return decode(json.loads(text))
