"""Reads a local dataset directory written by meathook's file sinks with
`datasets.load_dataset(dir, name=PIPELINE)`, DuckDB and polars, and
compares every row of each pipeline with what was ingested.

usage: check_readers.py EXPECTED.json

EXPECTED.json: {"root": DIR, "key": COLUMN, "timestamp": COLUMN,
                "pipelines": {NAME: [{column: value}]}}
The timestamp column is given as integer microseconds since the epoch; each
reader must see it as a UTC timestamp in microseconds.
"""

import glob
import json
import os
import sys

import datasets
import duckdb
import polars as pl
import pyarrow as pa


def compare(reader, pipeline, got, want, key, errors):
    got = sorted(got, key=lambda r: r[key])
    want = sorted(want, key=lambda r: r[key])
    if len(got) != len(want):
        errors.append(f"{reader} {pipeline}: {len(got)} rows, want {len(want)}")
        return 0
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            errors.append(f"{reader} {pipeline} row {i}: got {g!r}, want {w!r}")
    return len(got)


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    root, key, ts = spec["root"], spec["key"], spec["timestamp"]
    errors = []
    rows = 0
    for pipeline, want in spec["pipelines"].items():
        # datasets: the card's config for this pipeline, nothing else.
        table = datasets.load_dataset(root, name=pipeline, split="train").data.table
        column = table.schema.field(ts).type
        if column != pa.timestamp("us", tz="UTC"):
            errors.append(f"datasets {pipeline}: {ts} is {column}")
        table = table.set_column(
            table.schema.get_field_index(ts), ts, table.column(ts).cast(pa.int64())
        )
        rows += compare("datasets", pipeline, table.to_pylist(), want, key, errors)

        files = sorted(glob.glob(os.path.join(root, "data", pipeline, "**", "*.parquet"), recursive=True))

        rel = duckdb.read_parquet(files)
        types = dict(zip(rel.columns, (str(t) for t in rel.dtypes)))
        if types[ts] != "TIMESTAMP WITH TIME ZONE":
            errors.append(f"duckdb {pipeline}: {ts} is {types[ts]}")
        others = [c for c in rel.columns if c != ts]
        query = rel.project(", ".join([f'"{c}"' for c in others] + [f'epoch_us("{ts}") AS "{ts}"']))
        got = [dict(zip(query.columns, r)) for r in query.fetchall()]
        rows += compare("duckdb", pipeline, got, want, key, errors)

        frame = pl.read_parquet(files)
        if frame.schema[ts] != pl.Datetime("us", "UTC"):
            errors.append(f"polars {pipeline}: {ts} is {frame.schema[ts]}")
        frame = frame.with_columns(pl.col(ts).dt.epoch("us"))
        rows += compare("polars", pipeline, frame.to_dicts(), want, key, errors)
    for e in errors[:20]:
        print(e)
    if errors:
        print(f"FAILED: {len(errors)} mismatches")
        sys.exit(1)
    print(
        f"OK: {rows} rows compared with datasets {datasets.__version__}, "
        f"duckdb {duckdb.__version__}, polars {pl.__version__}"
    )


if __name__ == "__main__":
    main()
