"""Metadata filters: Chroma's ``where`` form, checked, applied by us, and translated.

A caller's ``where`` is one language whatever the store: Chroma's dict form
(fields, ``$eq``/``$ne``/``$gt``/``$gte``/``$lt``/``$lte``/``$in``/``$nin``,
``$and``/``$or``), with Chroma's meaning: ``$ne`` and ``$nin`` pass a chunk without
the field, the ordering operators do not. We apply it ourselves too
(:func:`matches`), so whatever a store returns is checked again, and translate it
for stores that take another form (:func:`qdrant_filter`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rag_ingest.errors import ConfigurationError

__all__ = [
    "check_where",
    "chroma_where",
    "matches",
    "milvus_expr",
    "pgvector_where",
    "qdrant_filter",
]

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and a > b,
    "$gte": lambda a, b: a is not None and a >= b,
    "$lt": lambda a, b: a is not None and a < b,
    "$lte": lambda a, b: a is not None and a <= b,
    "$in": lambda a, b: a in b,
    "$nin": lambda a, b: a not in b,
}


def check_where(where: dict[str, Any]) -> dict[str, Any]:
    """``where`` if it is a metadata filter in Chroma's form that we can also apply
    ourselves (fields, ``$eq``/``$ne``/``$gt``/``$gte``/``$lt``/``$lte``/``$in``/``$nin``,
    ``$and``/``$or``); else :class:`ConfigurationError`."""
    if not isinstance(where, dict) or not where:
        raise ConfigurationError(f"a metadata filter is a non-empty dict, not {where!r}")
    for key, value in where.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise ConfigurationError(f"{key} takes a non-empty list of filters")
            for part in value:
                check_where(part)
        elif key.startswith("$"):
            raise ConfigurationError(f"unknown filter operator {key!r}")
        elif isinstance(value, dict):
            for op, arg in value.items():
                if op not in _COMPARE:
                    raise ConfigurationError(f"unknown operator {op!r} for {key!r}")
                if op in ("$in", "$nin") and not isinstance(arg, list):
                    raise ConfigurationError(f"{op} for {key!r} takes a list")
    return where


def matches(metadata: dict[str, Any], where: dict[str, Any]) -> bool:
    """Whether chunk ``metadata`` passes a filter that :func:`check_where` accepted."""
    for key, value in where.items():
        if key == "$and":
            ok = all(matches(metadata, part) for part in value)
        elif key == "$or":
            ok = any(matches(metadata, part) for part in value)
        elif isinstance(value, dict):
            try:
                ok = all(_COMPARE[op](metadata.get(key), arg) for op, arg in value.items())
            except TypeError:  # comparing across types: no match, as in Chroma
                ok = False
        else:
            ok = metadata.get(key) == value
        if not ok:
            return False
    return True


def chroma_where(where: dict[str, Any]) -> dict[str, Any]:
    """``where`` as Chroma takes it: one key per dict and one operator per field, so
    ``{"a": 1, "b": {"$gt": 0, "$lt": 9}}`` is an ``$and`` of three (Chroma refuses
    the first form: "Expected where to have exactly one operator")."""
    parts: list[dict[str, Any]] = []
    for key, value in where.items():
        if key in ("$and", "$or"):
            inner = [chroma_where(part) for part in value]
            parts.append(inner[0] if len(inner) == 1 else {key: inner})
        elif isinstance(value, dict) and len(value) > 1:
            parts.extend({key: {op: arg}} for op, arg in value.items())
        else:
            parts.append({key: value})
    return parts[0] if len(parts) == 1 else {"$and": parts}


def pgvector_where(where: dict[str, Any]) -> dict[str, Any]:
    """``where`` (in :func:`chroma_where`'s form) as langchain-postgres's PGVector takes
    it: ``$in``/``$nin`` spelled as ``$eq``/``$ne`` clauses, which it compares by JSON
    type. Its own ``$in`` compares text (``"3"`` matches ``3``) and refuses booleans.
    Its ``$ne`` is SQL's, false on a missing field: ``$exists`` says that case."""
    parts: list[dict[str, Any]] = []
    for key, value in where.items():
        if key in ("$and", "$or"):
            parts.append({key: [pgvector_where(part) for part in value]})
            continue
        op, arg = next(iter(value.items())) if isinstance(value, dict) else ("$eq", value)
        if op == "$in":
            parts.append({"$or": [{key: {"$eq": v}} for v in arg]})
        elif op in ("$ne", "$nin"):
            differ = [{key: {"$ne": v}} for v in (arg if op == "$nin" else [arg])]
            missing = {key: {"$exists": False}}
            parts.append({"$or": [missing, differ[0] if len(differ) == 1 else {"$and": differ}]})
        else:
            parts.append({key: {op: arg}})
    return parts[0] if len(parts) == 1 else {"$and": parts}


def qdrant_filter(where: dict[str, Any], payload_key: str) -> Any:
    """``where`` (Chroma's form, :func:`check_where` accepted) as a Qdrant ``Filter`` on
    langchain-qdrant's payload, where a chunk's metadata is under ``payload_key``."""
    from qdrant_client import models

    def equal(key: str, value: Any) -> Any:
        if isinstance(value, float):  # MatchValue takes str, int and bool only
            return models.FieldCondition(key=key, range=models.Range(gte=value, lte=value))
        return models.FieldCondition(key=key, match=models.MatchValue(value=value))

    def anyof(key: str, values: list[Any]) -> Any:
        kinds = {type(v) for v in values}
        if kinds == {str} or kinds == {int}:  # MatchAny takes strs or ints (not bools)
            return models.FieldCondition(key=key, match=models.MatchAny(any=values))
        return models.Filter(should=[equal(key, v) for v in values])

    def convert(part: dict[str, Any]) -> Any:
        must: list[Any] = []
        must_not: list[Any] = []
        for name, value in part.items():
            if name == "$and":
                must.extend(convert(p) for p in value)
                continue
            if name == "$or":
                must.append(models.Filter(should=[convert(p) for p in value]))
                continue
            key = f"{payload_key}.{name}"
            ops = value if isinstance(value, dict) else {"$eq": value}
            for op, arg in ops.items():
                if op == "$eq":
                    must.append(equal(key, arg))
                elif op == "$ne":
                    must_not.append(equal(key, arg))
                elif op == "$in":
                    must.append(anyof(key, arg))
                elif op == "$nin":
                    must_not.extend(equal(key, v) for v in arg)
                else:  # $gt, $gte, $lt, $lte
                    bound = models.Range(**{op[1:]: arg})
                    must.append(models.FieldCondition(key=key, range=bound))
        return models.Filter(must=must or None, must_not=must_not or None)

    return convert(where)


_MILVUS_OPS = {"$eq": "==", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def milvus_expr(where: dict[str, Any], field: Callable[[str], str]) -> str:
    """``where`` as a Milvus boolean expression; ``field(key)`` is how a metadata key
    is named in it (a dynamic field by its name, or a key of a JSON field).
    ``$in``/``$nin`` become ``==``/``!=`` clauses, so a list may mix types; a missing
    field, false for ``!=`` there, passes ``$ne`` and ``$nin`` by ``is null``."""

    def literal(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return json.dumps(value, ensure_ascii=False)
        return repr(value)

    def convert(part: dict[str, Any]) -> str:
        clauses: list[str] = []
        for key, value in part.items():
            if key in ("$and", "$or"):
                joined = f" {key[1:]} ".join(f"({convert(p)})" for p in value)
                clauses.append(f"({joined})")
                continue
            ops = value if isinstance(value, dict) else {"$eq": value}
            for op, arg in ops.items():
                if op == "$in":
                    inner = " or ".join(f"{field(key)} == {literal(v)}" for v in arg)
                    clauses.append(f"({inner})")
                elif op in ("$ne", "$nin"):
                    differ = " and ".join(
                        f"{field(key)} != {literal(v)}" for v in (arg if op == "$nin" else [arg])
                    )
                    clauses.append(f"({field(key)} is null or ({differ}))")
                else:
                    clauses.append(f"{field(key)} {_MILVUS_OPS[op]} {literal(arg)}")
        return " and ".join(clauses)

    return convert(where)
