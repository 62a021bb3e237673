"""Reads a simulated dataset on the fake Hub with the readers users have.

Usage: year_readers.py ENDPOINT REPO TOKEN CACHE PIPELINES

Prints one JSON object: for each pipeline (PIPELINES is comma-separated),
[rows, distinct seq] as DuckDB reads a snapshot of the repository
(`snapshot_download`) and as `datasets.load_dataset(REPO, name=PIPELINE)`
reads its config of the dataset card.
"""

import json
import os
import sys

os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"

import duckdb  # noqa: E402
from huggingface_hub import snapshot_download  # noqa: E402


def main():
    endpoint, repo, token, cache, pipelines = sys.argv[1:6]
    root = snapshot_download(repo, repo_type="dataset", token=token, endpoint=endpoint,
                             cache_dir=os.path.join(cache, "snapshot"))
    import datasets

    out = {}
    for name in pipelines.split(","):
        glob = os.path.join(root, "data", name, "*", "*.parquet")
        rows, distinct = duckdb.sql(
            f"SELECT count(*), count(DISTINCT seq) FROM read_parquet('{glob}')").fetchall()[0]
        ds = datasets.load_dataset(repo, name=name, split="train", token=token)
        seqs = ds["seq"]
        out[name] = {"duckdb": [rows, distinct], "datasets": [len(seqs), len(set(seqs))]}
    print(json.dumps(out))


main()
