"""Storage of record: Parquet tables (schemas + atomic unit writers), the SQLAlchemy catalog, and a DuckDB
views file for SQL. Does not import pixelrefer_core nor Prefect.

Names are imported lazily (PEP 562): ``import storage`` costs nothing, and `from storage import Store`
loads only what the store needs, so a command that only queries never imports SQLAlchemy or fsspec.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage.catalog import Catalog
    from storage.errors import (
        PredicateError,
        QueryError,
        QueryInterrupted,
        QueryTimeoutError,
        ReadOnlyQueryError,
        ReadOnlyStoreError,
        SchemaVersionError,
        StoreError,
    )
    from storage.schemas import SCHEMAS, table_from_records
    from storage.store import Store

_WHERE = {
    "SCHEMAS": "storage.schemas",
    "table_from_records": "storage.schemas",
    "Catalog": "storage.catalog",
    "Store": "storage.store",
    "StoreError": "storage.errors",
    "SchemaVersionError": "storage.errors",
    "ReadOnlyQueryError": "storage.errors",
    "ReadOnlyStoreError": "storage.errors",
    "QueryError": "storage.errors",
    "QueryTimeoutError": "storage.errors",
    "QueryInterrupted": "storage.errors",
    "PredicateError": "storage.errors",
}

__all__ = [
    "SCHEMAS",
    "Catalog",
    "PredicateError",
    "QueryError",
    "QueryInterrupted",
    "QueryTimeoutError",
    "ReadOnlyQueryError",
    "ReadOnlyStoreError",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "table_from_records",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
