"""Rebuild and show the manifest of an output root: every run no job is writing (completed, or
unfinished and marked so) and its accepted files.

Usage:
    python -m jobs.manifest OUTPUT_PATH [--json]

A generation run rebuilds ``<output.path>/manifest.json`` when it completes; this does the same
by hand (after deleting a run folder, say, or where two runs finished at once on an object store
without atomic renames). It prints one line per run and how to load everything accepted to date:

    import datasets, json, fsspec
    with fsspec.open("OUTPUT_PATH/manifest.json") as f:
        files = json.load(f)["accepted"]
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", help="the output root (output.path): a folder or an fsspec URL")
    ap.add_argument("--json", action="store_true", help="print the manifest itself")
    args = ap.parse_args(argv)

    from pipeline.catalog import MANIFEST, runs, write_manifest

    if not runs(args.path):
        print(f"error: no thinkmill run (completed, or unfinished and not running) under {args.path}", file=sys.stderr)
        return 2
    m = write_manifest(args.path)
    if args.json:
        print(json.dumps(m, indent=1))
        return 0
    for r in m["runs"]:
        print(
            f"{r['run_id']:<28} {r['accepted']:>9} accepted in {len(r['files']):>4} file(s), "
            f"{r['earlier_prompts']} prompts left to earlier runs, fingerprint {r['fingerprint']}"
            + (" (unfinished: its committed samples)" if r.get("unfinished") else "")
        )
    print(f"{len(m['accepted'])} accepted file(s) in {args.path.rstrip('/')}/{MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
