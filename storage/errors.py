"""Errors raised by the storage layer.

Every message names the thing (table, unit, file, statement) and the reason, and where it can,
what to do about it.
"""

from __future__ import annotations

__all__ = [
    "PredicateError",
    "QueryError",
    "QueryInterrupted",
    "QueryTimeoutError",
    "ReadOnlyQueryError",
    "ReadOnlyStoreError",
    "SchemaVersionError",
    "StoreError",
]


class StoreError(Exception):
    """Base class of every storage error (bad input rows, missing store, unknown video, ...)."""


class SchemaVersionError(StoreError):
    """The store's catalog was written by a newer (or unknown) schema version than this code supports."""

    def __init__(self, store_version: int, supported_version: int, where: str):
        self.store_version = store_version
        self.supported_version = supported_version
        self.where = where
        super().__init__(
            f"store catalog {where} has schema version {store_version}, but this code supports up to "
            f"version {supported_version}; upgrade pixelrefer-archive to open it (or point at another store)"
        )


class ReadOnlyStoreError(StoreError):
    """Something needs write access to a store that is opened read-only (or whose files cannot be written)."""

    def __init__(self, where: str, what: str):
        self.where = where
        self.what = what
        super().__init__(
            f"store {where} is read-only (opened read-only, or its files cannot be written): {what} needs "
            "write access; reading (status, query, export) works as it is"
        )


class ReadOnlyQueryError(StoreError):
    """A query contained a statement that could change state (CREATE, INSERT, COPY, ATTACH, SET, ...)."""

    def __init__(self, statement_type: str, statement: str):
        self.statement_type = statement_type
        self.statement = statement
        short = " ".join(statement.split())
        if len(short) > 80:
            short = short[:77] + "..."
        super().__init__(
            f"refused {statement_type} statement: queries are read-only (SELECT, EXPLAIN, DESCRIBE, SHOW, "
            f"SUMMARIZE only): {short!r}"
        )


class QueryError(StoreError):
    """DuckDB could not parse or run a query; `duckdb_message` is DuckDB's own text."""

    def __init__(self, duckdb_message: str):
        self.duckdb_message = duckdb_message
        super().__init__(duckdb_message)


class QueryTimeoutError(QueryError):
    """A query ran past its time limit and was interrupted."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        super().__init__(f"query interrupted after its time limit of {timeout_s:g} s (raise it with --timeout)")


class QueryInterrupted(QueryError):
    """A query was interrupted by the user (Ctrl-C)."""

    def __init__(self) -> None:
        super().__init__("query interrupted")


class PredicateError(StoreError):
    """A selection predicate (`--where`) is not one boolean expression over the allowed columns."""

    def __init__(self, predicate: str, reason: str, what: str = "--where"):
        self.predicate = predicate
        self.reason = reason
        super().__init__(f"{what} {predicate!r} is not a valid predicate over objects/videos: {reason}")
