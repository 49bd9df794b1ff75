"""Storage of record: Parquet tables (schemas + atomic unit writers), the SQLAlchemy catalog, and
DuckDB views for SQL. Does not import pixelrefer_core nor Prefect."""

from storage.catalog import Catalog
from storage.errors import QueryError, ReadOnlyQueryError, SchemaVersionError, StoreError
from storage.schemas import SCHEMAS, table_from_records
from storage.store import Store

__all__ = [
    "SCHEMAS",
    "Catalog",
    "QueryError",
    "ReadOnlyQueryError",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "table_from_records",
]
