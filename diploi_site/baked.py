"""Reads compiled to SQL once per process, for the few queries on every live change's path.

Django builds and compiles a queryset each time it is evaluated: for a read with a few joins that is
1-2 ms of Python (timed on a CPU that had been idle: `access.live_deployment` spent 0.5 ms building
and 1.5 ms compiling of its 4.4 ms), paid on each status change by the watcher and again by every web
process showing it. A `BakedQuery` builds and compiles its queryset once, for placeholder values of
its parameters (ids), and afterwards runs that SQL with the real values in their places; Django's
own compiler and iterable still turn the rows into what the queryset gives (model instances with
their select_related rows and annotations, dicts, tuples). Only the building and compiling is skipped.

Only for querysets whose SQL does not depend on the values (a list whose length varies would change
it): checked when baked, by compiling for two different sets of placeholders. What PostgreSQL spends
planning is what prepared statements save on top (DB_PREPARED_STATEMENTS).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections
from django.db.models import QuerySet

# Two sets of values no id takes: whatever differs between the two compiled queries is a parameter.
_PLACEHOLDERS = (-7_301_942_600, -8_412_053_700)
_ID_RANGE = (-(2**63), 2**63 - 1)  # a bigint's


class NotBakeable(ValueError):
    """The queryset's SQL depends on its parameters' values: it cannot be compiled once."""


@dataclass(frozen=True)
class _Baked:
    queryset: QuerySet
    compiler: object  # the SQLCompiler, compiled: its select, klass_info and annotations are set
    sql: str
    slots: tuple  # per SQL parameter: ("value", index of the call's argument) or ("constant", value)


class BakedQuery:
    """``queryset_for(*ids)`` compiled once; calling it with ids gives the queryset's results as a list.

    ``queryset_for`` must build the same SQL whatever the ids (checked on first use: `NotBakeable`)
    and use each id as a value to compare with (an id outside a bigint's range matches nothing);
    prefetch_related and related managers' querysets are not supported. Thread-safe: each call runs
    on the calling thread's connection.
    """

    def __init__(self, queryset_for: Callable[..., QuerySet], *, arity: int = 1):
        self._queryset_for = queryset_for
        self._arity = arity
        self._baked: _Baked | None = None
        self._lock = threading.Lock()

    def __call__(self, *ids: int) -> list:
        if len(ids) != self._arity or not all(isinstance(value, int) for value in ids):
            raise TypeError(f"expected {self._arity} integer id(s), got {ids!r}")
        if not all(_ID_RANGE[0] <= value <= _ID_RANGE[1] for value in ids):
            return []  # no row has such an id (and SQLite could not even take the number)
        baked = self._baked or self._bake()
        compiler = copy.copy(baked.compiler)
        compiler.connection = connections[baked.queryset.db]  # this thread's
        params = tuple(ids[value] if kind == "value" else value for kind, value in baked.slots)
        compiler.as_sql = lambda *args, **kwargs: (baked.sql, params)
        evaluation = _Evaluation(baked.queryset, _CompiledQuery(baked.queryset.query, compiler))
        return list(baked.queryset._iterable_class(evaluation))

    def _bake(self) -> _Baked:
        with self._lock:
            if self._baked is None:
                self._baked = self._compile()
            return self._baked

    def _compile(self) -> _Baked:
        first, second = ([placeholder - number for number in range(self._arity)] for placeholder in _PLACEHOLDERS)
        queryset = self._queryset_for(*first)
        if queryset._prefetch_related_lookups:
            raise NotBakeable("prefetch_related runs queries of its own: not bakeable")
        if queryset._known_related_objects:  # a related manager's: its rows would get the placeholder's instance
            raise NotBakeable("a related manager's queryset: filter the model's own manager by the id instead")
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        other = self._queryset_for(*second)
        other_sql, other_params = other.query.get_compiler(using=other.db).as_sql()
        if sql != other_sql or len(params) != len(other_params):
            raise NotBakeable("the query's SQL depends on its parameters' values")
        slots = []
        for mine, theirs in zip(params, other_params, strict=True):
            if mine == theirs:
                slots.append(("constant", mine))
            elif mine in first and theirs in second and first.index(mine) == second.index(theirs):
                slots.append(("value", first.index(mine)))
            else:
                raise NotBakeable(f"a parameter of the query is derived from an id ({mine!r}), not the id itself")
        return _Baked(queryset, compiler, sql, tuple(slots))


class _CompiledQuery:
    """The baked queryset's query, but for the compiler it hands out: the compiled one."""

    def __init__(self, query, compiler):
        self._query, self._compiler = query, compiler

    def get_compiler(self, using=None, connection=None, elide_empty=True):
        return self._compiler

    def __getattr__(self, name):
        return getattr(self._query, name)


class _Evaluation:
    """What a queryset's iterable reads of its queryset: the baked one's, with the compiled query."""

    def __init__(self, queryset: QuerySet, query: _CompiledQuery):
        self._queryset, self.query = queryset, query

    def __getattr__(self, name):
        return getattr(self._queryset, name)
