"""Enumerators: iterables of ``(item, cursor)`` pairs that start after a given cursor.

- ``sequence``, ``int_range``: cursor = index or number of the last item completed;
- ``csv_rows``: rows of a CSV file, resumed by a seek (O(1));
- ``sql_rows``, ``sql_batches``: keyset pagination over one or several key columns;
- ``batches``, ``nested``, ``throttle``: builders that compose the others.
"""

from .basic import batches, int_range, nested, sequence, throttle
from .csv_rows import csv_rows
from .sql import sql_batches, sql_rows

__all__ = [
    "batches",
    "csv_rows",
    "int_range",
    "nested",
    "sequence",
    "sql_batches",
    "sql_rows",
    "throttle",
]
