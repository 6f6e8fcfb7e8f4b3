"""The dataset catalog's file import pipeline: pure functions, no database and no HTTP.

An uploaded file is recognised (`detect_format`, `detect_encoding`), read as raw text
(`read_raw`), given a schema on its first import (`infer_columns`), and checked and converted
against the dataset's declared columns into a typed Arrow table (`validate`, or `load` for both
steps, with a fast path for clean CSV files). Problems with the file as a whole raise `IngestError`;
problems with single values are listed as `ImportIssue`s with row, column, value and reason, and
their rows are left out of the table and kept for a reject file. `duplicate_keys` checks the key
columns before an upsert. The value rules are documented in `zhishe.catalog.ingest.values`.
"""

from zhishe.catalog.ingest.detect import FORMATS, detect_encoding, detect_format
from zhishe.catalog.ingest.errors import IngestError
from zhishe.catalog.ingest.infer import infer_columns
from zhishe.catalog.ingest.keys import DuplicateKey, duplicate_keys
from zhishe.catalog.ingest.raw import RawTable, read_raw
from zhishe.catalog.ingest.validation import ImportIssue, LoadResult, load, validate

__all__ = [
    "FORMATS",
    "DuplicateKey",
    "ImportIssue",
    "IngestError",
    "LoadResult",
    "RawTable",
    "detect_encoding",
    "detect_format",
    "duplicate_keys",
    "infer_columns",
    "load",
    "read_raw",
    "validate",
]
