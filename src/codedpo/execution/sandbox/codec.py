"""Plain-data codec for values crossing a sandbox boundary.

JSON, extended with single-key tag objects for the builtin types JSON lacks::

    {"$tuple": [...]}  {"$set": [...]}  {"$frozenset": [...]}  {"$dict": [[k, v], ...]}
    {"$bytes": "<base64>"}  {"$complex": [re, im]}  {"$float": "nan" | "inf" | "-inf"}
    {"$int": "0x..."} (integers of 2**256 and beyond)

Any other JSON object decodes to a dict with string keys. Encoding accepts *exact* builtin types
only (``type(v) is int``, not ``isinstance``): an ``int`` subclass or any object with its own
``__eq__`` cannot be encoded, so it can never be compared as if it were the right answer.

A problem's own types (LeetCode's ``ListNode``/``TreeNode``, defined by its prelude) cross as
structured data when the caller passes ``types`` (class name -> class, the classes the prelude
defined): the value becomes ``{"$graph": [root, [[class name, {attribute: value}], ...]]}``
with ``{"$ref": n}`` for each object, so shared nodes, cycles and 10^5-node lists travel without
recursion. Only the attributes cross, never behaviour; the receiving side rebuilds instances of
*its own* class of that name. An object of a class the solution defined under the same name
(many answers repeat ``class ListNode``) crosses the same way.

:func:`digest` is a canonical sha256 of a float-free value, computed from the Python value
itself in a streaming pass (no full JSON text in memory): both sides of the boundary compute it,
so an output too large to carry is still compared exactly.

This file is also bound into the sandbox (the harness imports it), so it uses the stdlib only.
"""

import base64
import collections
import hashlib
import json
import math

_TAGS = ("$tuple", "$set", "$frozenset", "$dict", "$bytes", "$complex", "$float", "$int",
         "$graph", "$ref")  # fmt: skip
# Integers beyond this travel in hex: decimal conversion of a huge int is quadratic (HumanEval/83
# returns numbers with 10^5 digits), hex is linear.
_BIG = 2**256
_DICT_LIKE = (collections.Counter, collections.OrderedDict, collections.defaultdict)
MAX_DEPTH = 200


class Unencodable(TypeError):
    """A value that is not plain builtin data."""


class _Graph:
    """Objects of the problem's own types met while encoding one value."""

    def __init__(self, types: dict) -> None:
        self.names = {cls: name for name, cls in types.items()}
        self.known = set(types)
        self.ids: dict[int, int] = {}
        self.objects: list = []

    def ref(self, value) -> dict | None:
        cls = type(value)
        name = self.names.get(cls)
        if name is None and cls.__name__ in self.known and hasattr(value, "__dict__"):
            name = cls.__name__  # the solution's own class of the problem's type name
        if name is None:
            return None
        key = id(value)
        if key not in self.ids:
            self.ids[key] = len(self.objects)
            self.objects.append((name, value))
        return {"$ref": self.ids[key]}


def encode(value, types: dict | None = None):
    """Turn plain builtin data into JSON-ready data; raise :class:`Unencodable` otherwise.

    ``types`` (class name -> class) admits the problem's own types as structured data.
    """
    if not types:
        return _encode(value, 0, None)
    graph = _Graph(types)
    root = _encode(value, 0, graph)
    if not graph.objects:
        return root
    table = []
    done = 0
    while done < len(graph.objects):  # a worklist, not recursion: lists of 10^5 nodes
        name, obj = graph.objects[done]
        attrs = _attributes(obj)
        table.append([name, {k: _encode(v, 1, graph) for k, v in attrs.items()}])
        done += 1
    return {"$graph": [root, table]}


def _attributes(obj) -> dict:
    attrs = dict(getattr(obj, "__dict__", {}))
    for slot in getattr(type(obj), "__slots__", ()):
        if hasattr(obj, slot):
            attrs[slot] = getattr(obj, slot)
    for key in attrs:
        if type(key) is not str:
            raise Unencodable("attribute names must be strings")
    return attrs


def _encode(value, depth: int, graph):
    if depth > MAX_DEPTH:
        raise Unencodable(f"nesting deeper than {MAX_DEPTH}")
    t = type(value)
    if t is int and (value >= _BIG or value <= -_BIG):
        return {"$int": hex(value)}
    if value is None or t is bool or t is int or t is str:
        return value
    if t is float:
        if math.isfinite(value):
            return value
        return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    d = depth + 1
    if t is list:
        return [_encode(v, d, graph) for v in value]
    if t is tuple:
        return {"$tuple": [_encode(v, d, graph) for v in value]}
    if t is set or t is frozenset:
        return {"$set" if t is set else "$frozenset": [_encode(v, d, graph) for v in value]}
    if t is dict:
        if all(type(k) is str for k in value) and not _looks_tagged(value):
            return {k: _encode(v, d, graph) for k, v in value.items()}
        return {"$dict": [[_encode(k, d, graph), _encode(v, d, graph)] for k, v in value.items()]}
    if t in _DICT_LIKE:
        # Exactly these stdlib mappings (MBPP+'s references return Counter): compared as dicts.
        return _encode(dict(value), depth, graph)
    if t is bytes:
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if t is complex:
        return {"$complex": [_encode(value.real, d, None), _encode(value.imag, d, None)]}
    if graph is not None:
        ref = graph.ref(value)
        if ref is not None:
            return ref
    raise Unencodable(f"{t.__module__}.{t.__qualname__} is not plain builtin data")


def _looks_tagged(d: dict) -> bool:
    return len(d) == 1 and next(iter(d)) in _TAGS


def decode(data, types: dict | None = None):
    """Inverse of :func:`encode`. Raises ``ValueError`` on malformed tags or unknown types."""
    if isinstance(data, dict) and len(data) == 1 and "$graph" in data:
        return _decode_graph(data["$graph"], types or {})
    return _decode(data, None)


def _decode_graph(body, types: dict):
    if not isinstance(body, list) or len(body) != 2 or not isinstance(body[1], list):
        raise ValueError("$graph must be [root, objects]")
    root, table = body
    objects = []
    for entry in table:
        if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[1], dict):
            raise ValueError("$graph objects must be [class name, attributes]")
        cls = types.get(entry[0])
        if cls is None:
            raise ValueError(f"unknown type {str(entry[0])[:40]!r} in $graph")
        objects.append(cls.__new__(cls))
    for obj, (_, attrs) in zip(objects, table, strict=True):
        obj.__dict__.update({k: _decode(v, objects) for k, v in attrs.items()})
    return _decode(root, objects)


def _decode(data, objects):
    if isinstance(data, list):
        return [_decode(v, objects) for v in data]
    if isinstance(data, dict):
        if _looks_tagged(data):
            tag, body = next(iter(data.items()))
            if tag == "$tuple":
                return tuple(_decode(v, objects) for v in _as_list(body, tag))
            if tag == "$set":
                return set(_decode(v, objects) for v in _as_list(body, tag))
            if tag == "$frozenset":
                return frozenset(_decode(v, objects) for v in _as_list(body, tag))
            if tag == "$dict":
                out = {}
                for pair in _as_list(body, tag):
                    if not isinstance(pair, list) or len(pair) != 2:
                        raise ValueError("$dict items must be [key, value] pairs")
                    out[_decode(pair[0], objects)] = _decode(pair[1], objects)
                return out
            if tag == "$bytes":
                if not isinstance(body, str):
                    raise ValueError("$bytes must be a base64 string")
                return base64.b64decode(body, validate=True)
            if tag == "$complex":
                re_, im = _as_list(body, tag)
                return complex(_decode(re_, None), _decode(im, None))
            if tag == "$int":
                if not isinstance(body, str) or len(body) > 10**7:
                    raise ValueError("$int must be a hex string")
                return int(body, 16)
            if tag == "$float":
                if body not in ("nan", "inf", "-inf"):
                    raise ValueError("$float must be nan, inf or -inf")
                return float(body)
            if tag == "$ref":
                if objects is None or type(body) is not int or not 0 <= body < len(objects):
                    raise ValueError("$ref outside a $graph")
                return objects[body]
            raise ValueError("$graph may only be the outermost value")
        return {k: _decode(v, objects) for k, v in data.items()}
    return data


def _as_list(body, tag: str) -> list:
    if not isinstance(body, list):
        raise ValueError(f"{tag} must hold a list")
    return body


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


# -- canonical digest ------------------------------------------------------------------------
class HasFloat(ValueError):
    """The value holds a float: equality may need a tolerance, so it has no digest."""


_SCALARS = frozenset({str, int, type(None)})
_dump = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _canonical_chunks(value, depth: int = 0):
    """The canonical JSON text of a float-free value, in pieces: set and dict items sorted."""
    if depth > MAX_DEPTH:
        raise Unencodable(f"nesting deeper than {MAX_DEPTH}")
    t = type(value)
    if t is int and (value >= _BIG or value <= -_BIG):
        yield '{"$int":"' + hex(value) + '"}'
    elif t is bool:
        yield "1" if value else "0"  # True == 1: equal values must have equal digests
    elif value is None or t is int or t is str:
        yield _dump(value)
    elif t is float or t is complex:
        raise HasFloat("float")
    elif t is list or t is tuple:
        yield "[" if t is list else '{"$tuple":['
        if _flat(value):
            # The common huge case (Mbpp/255: 1.6M tuples of strings): one C-level dump per
            # sequence instead of one Python call per element.
            yield _dump(list(value))[1:-1]
        else:
            for n, item in enumerate(value):
                if n:
                    yield ","
                yield from _canonical_chunks(item, depth + 1)
        yield "]" if t is list else "]}"
    elif t is set or t is frozenset:
        items = sorted("".join(_canonical_chunks(v, depth + 1)) for v in value)
        yield ('{"$set":[' if t is set else '{"$frozenset":[') + ",".join(items) + "]}"
    elif t is dict or t in _DICT_LIKE:
        pairs = sorted(
            "[" + "".join(_canonical_chunks(k, depth + 1)) + ","
            + "".join(_canonical_chunks(v, depth + 1)) + "]"
            for k, v in value.items()
        )  # fmt: skip
        yield '{"$dict":[' + ",".join(pairs) + "]}"
    elif t is bytes:
        yield '{"$bytes":"' + base64.b64encode(value).decode("ascii") + '"}'
    else:
        raise Unencodable(f"{t.__module__}.{t.__qualname__} is not plain builtin data")


def _flat(seq) -> bool:
    kinds = set(map(type, seq))
    if not kinds <= _SCALARS:
        return False
    if int in kinds:
        ints = [v for v in seq if type(v) is int]
        return max(ints) < _BIG and min(ints) > -_BIG
    return True


def digest(value) -> str:
    """sha256 of a float-free value in canonical form: equal digests <=> equal values.

    Raises :class:`HasFloat` for values holding floats and :class:`Unencodable` for non-plain
    data. Streams: memory stays O(largest set or dict), not O(text).
    """
    h = hashlib.sha256()
    buf: list[str] = []
    size = 0
    for chunk in _canonical_chunks(value):
        buf.append(chunk)
        size += len(chunk)
        if size > 1 << 20:
            h.update("".join(buf).encode())
            buf, size = [], 0
    h.update("".join(buf).encode())
    return h.hexdigest()


def dumps(value) -> str:
    return json.dumps(encode(value), ensure_ascii=False, allow_nan=False)


def loads(text: str):
    return decode(json.loads(text))
