"""Talks to the fake Hub with the official `huggingface_hub` client: lists
and downloads the files meathook's sink committed, reads them with
pyarrow and compares every row; does the same through
`snapshot_download` (which lists the tree at the head's commit id) and
through `datasets.load_dataset(REPO, name=PIPELINE)` for each pipeline's
config of the dataset card; checks the card; then commits files of its
own (one regular, one LFS in several parts).

usage: hub_interop.py ENDPOINT REPO TOKEN EXPECTED.json CACHE_DIR

The caller sets HF_ENDPOINT to ENDPOINT and HF_HOME and HF_DATASETS_CACHE
to a directory of its own: `datasets` reads them when imported.

EXPECTED.json: {"files": {path: [row, ...]}, "pipelines": [name, ...]}
with floats as {"f64": "<16 hex digits of the bits>"}. Prints one JSON
object on stdout: {"uploaded": {path: sha256 hex}}.
"""

import hashlib
import json
import os
import struct
import sys

# The fake speaks plain LFS, as the Hub does for clients without Xet.
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"

import pyarrow.parquet as pq  # noqa: E402
import yaml  # noqa: E402
from huggingface_hub import HfApi, hf_hub_download, snapshot_download  # noqa: E402


def f64_hex(x):
    return "%016x" % struct.unpack("<Q", struct.pack("<d", x))[0]


def normal(value):
    if isinstance(value, dict) and set(value) == {"f64"}:
        return ("f64", value["f64"])
    if isinstance(value, float):
        return ("f64", f64_hex(value))
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    return value


def differ(what, got, want):
    if got == want:
        return []
    first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    return [f"{what}: {len(got)} rows read, {len(want)} expected; first difference at {first}"]


def check_snapshot(repo, token, cache, expected):
    """Every committed file, from a snapshot of the head's commit id."""
    root = snapshot_download(repo, repo_type="dataset", token=token,
                             cache_dir=os.path.join(cache, "snapshot"))
    errors = []
    for path, rows in expected["files"].items():
        local = os.path.join(root, path)
        if not os.path.isfile(local):
            errors.append(f"{path}: not in the snapshot")
            continue
        got = [normal(r) for r in pq.read_table(local).to_pylist()]
        errors += differ(f"snapshot {path}", got, [normal(r) for r in rows])
    return errors


def check_load_dataset(repo, token, expected):
    """Each pipeline's rows, and only those, from its config of the card."""
    import datasets

    errors = []
    for name in expected["pipelines"]:
        want = [normal(r) for path, rows in sorted(expected["files"].items())
                if path.startswith(f"data/{name}/") for r in rows]
        ds = datasets.load_dataset(repo, name=name, split="train", token=token)
        got = [normal(r) for r in ds.to_list()]
        key = lambda r: r["seq"]  # noqa: E731
        errors += differ(f"load_dataset {name}", sorted(got, key=key), sorted(want, key=key))
    return errors


def main():
    endpoint, repo, token, expected_path, cache = sys.argv[1:6]
    expected = json.load(open(expected_path))
    api = HfApi(endpoint=endpoint, token=token)
    errors = []

    listed = set(api.list_repo_files(repo, repo_type="dataset"))
    for path, rows in expected["files"].items():
        if path not in listed:
            errors.append(f"{path}: not listed by list_repo_files ({sorted(listed)})")
            continue
        local = hf_hub_download(repo, path, repo_type="dataset", endpoint=endpoint,
                                token=token, cache_dir=cache)
        got = [normal(r) for r in pq.read_table(local).to_pylist()]
        want = [normal(r) for r in rows]
        if got != want:
            errors.append(f"{path}: {len(got)} rows read, {len(want)} expected; "
                          f"first difference at {next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))}")

    errors += check_snapshot(repo, token, cache, expected)
    errors += check_load_dataset(repo, token, expected)

    tree = {f.path: f for f in api.list_repo_tree(repo, repo_type="dataset", recursive=True)
            if hasattr(f, "lfs")}
    for path in expected["files"]:
        f = tree.get(path)
        if f is None or f.lfs is None:
            errors.append(f"{path}: not an LFS file in the tree listing")

    card_path = hf_hub_download(repo, "README.md", repo_type="dataset", endpoint=endpoint,
                                token=token, cache_dir=cache)
    text = open(card_path).read()
    if not text.startswith("---\n"):
        errors.append("README.md has no YAML header")
    else:
        header = yaml.safe_load(text.split("---\n")[1])
        configs = {c["config_name"]: c for c in header.get("configs", [])}
        for name in expected["pipelines"]:
            if name not in configs:
                errors.append(f"card: no config for {name} ({sorted(configs)})")
            else:
                files = configs[name]["data_files"]
                if not any(f.get("path", "").startswith(f"data/{name}/") for f in files):
                    errors.append(f"card: config {name} lists {files}")

    uploaded = {}
    note = b"written by the official client\n"
    api.upload_file(path_or_fileobj=note, path_in_repo="notes/from-python.txt",
                    repo_id=repo, repo_type="dataset", commit_message="a note")
    uploaded["notes/from-python.txt"] = hashlib.sha256(note).hexdigest()
    blob = bytes((i * 7919) % 251 for i in range(3 * 1024 * 1024 + 17))
    blob_path = os.path.join(cache, "blob.bin")
    with open(blob_path, "wb") as f:
        f.write(blob)
    api.upload_file(path_or_fileobj=blob_path, path_in_repo="extra/blob.bin",
                    repo_id=repo, repo_type="dataset", commit_message="a blob")
    uploaded["extra/blob.bin"] = hashlib.sha256(blob).hexdigest()
    back = open(hf_hub_download(repo, "extra/blob.bin", repo_type="dataset", endpoint=endpoint,
                                token=token, cache_dir=cache), "rb").read()
    if back != blob:
        errors.append("extra/blob.bin did not download as uploaded")

    if errors:
        for e in errors:
            print("MISMATCH:", e, file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"uploaded": uploaded}))


if __name__ == "__main__":
    main()
