"""Reads parquet files written by meathook's file sink with pyarrow and
compares every value with what was ingested.

usage: check_parquet.py EXPECTED.json

EXPECTED.json: {"files": [{"path": ..., "rows": [{column: value}]}],
                "datasets": [{"dir": ..., "rows": N, "null_column": name, "nulls": N}]}
A float is written as {"f64": "<16 hex digits of its bits>"} so that NaN
payloads and signed zeros are compared exactly; timestamps as the integer
count of their column's unit since the epoch (microseconds by default,
nanoseconds for timestamp_ns fields); enums as the variant name.
"""

import json
import struct
import sys

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def bits(x):
    return struct.pack("<d", x).hex()


def expected_bits(hex16):
    # The JSON holds big-endian hex of the u64; compare as little-endian bytes.
    return struct.pack("<Q", int(hex16, 16)).hex()


def same(actual, expected, where, errors):
    if isinstance(expected, dict) and set(expected) == {"f64"}:
        if not isinstance(actual, float) or bits(actual) != expected_bits(expected["f64"]):
            errors.append(f"{where}: got {actual!r}, want f64 bits {expected['f64']}")
    elif isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            errors.append(f"{where}: got {actual!r}, want {expected!r}")
            return
        for key in expected:
            same(actual[key], expected[key], f"{where}.{key}", errors)
    elif isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            errors.append(f"{where}: got {actual!r}, want {expected!r}")
            return
        for i, (a, e) in enumerate(zip(actual, expected)):
            same(a, e, f"{where}[{i}]", errors)
    elif actual != expected or type(actual) is not type(expected):
        errors.append(f"{where}: got {actual!r}, want {expected!r}")


def rows_of(table):
    # Timestamps as their integer count: Python datetimes stop at microseconds.
    columns = []
    for field in table.schema:
        column = table.column(field.name)
        if pa.types.is_timestamp(field.type):
            if field.type.tz not in ("UTC", "+00:00"):
                raise SystemExit(f"column {field.name} is not a UTC timestamp: {field.type}")
            column = column.cast(pa.int64())
        columns.append(column)
    return pa.table(columns, names=table.schema.names).to_pylist()


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    errors = []
    values = 0
    for entry in spec["files"]:
        table = pq.read_table(entry["path"])
        rows = rows_of(table)
        if len(rows) != len(entry["rows"]):
            errors.append(f"{entry['path']}: {len(rows)} rows, want {len(entry['rows'])}")
            continue
        for i, (got, want) in enumerate(zip(rows, entry["rows"])):
            same(got, want, f"{entry['path']} row {i}", errors)
            values += len(want)
        meta = pq.ParquetFile(entry["path"]).metadata
        if meta.num_row_groups < 1 or not meta.created_by.startswith("parquet-rs"):
            errors.append(f"{entry['path']}: unexpected metadata {meta}")
    for entry in spec.get("datasets", []):
        dataset = ds.dataset(entry["dir"], format="parquet")
        schemas = [pq.read_schema(f) for f in dataset.files]
        unified = ds.dataset(entry["dir"], format="parquet", schema=pa.unify_schemas(schemas))
        table = unified.to_table()
        if table.num_rows != entry["rows"]:
            errors.append(f"{entry['dir']}: {table.num_rows} rows, want {entry['rows']}")
        nulls = table.column(entry["null_column"]).null_count
        if nulls != entry["nulls"]:
            errors.append(f"{entry['dir']}: {nulls} nulls in {entry['null_column']}, want {entry['nulls']}")
    for e in errors[:20]:
        print(e)
    if errors:
        print(f"FAILED: {len(errors)} mismatches")
        sys.exit(1)
    print(f"OK: {len(spec['files'])} files, {values} values compared with pyarrow {pa.__version__}")


if __name__ == "__main__":
    main()
