"""Render a run's report again, or compare two runs side by side.

Usage:
    python -m jobs.report RUN_DIR [--compare OTHER_RUN_DIR] [--out FILE]

``RUN_DIR`` is a completed run folder (``<output.path>/<run_id>``, local or an fsspec URL,
with its ``summary.json``). Without ``--compare`` the run's ``report.html`` is rendered again from
its summary and a read of a few example rows per reason, and written to ``RUN_DIR/report.html``
(or ``--out``). With ``--compare`` the two runs are put side by side (a night against the night
before: accept rate, rejection and error reasons, per mode, filters, lengths, with the
differences), written to ``--out`` or ``RUN_DIR/compare-<other run>.html``.

Exit codes: 0 written; 2 a folder is not a completed run folder.
"""

from __future__ import annotations

import argparse
import json
import sys


class NotARun(ValueError):
    """A folder that is not a completed run folder."""


def _completed(url: str):
    from pipeline.run_folder import RunFolder

    folder = RunFolder(url)
    try:
        return folder, folder.read_summary()
    except FileNotFoundError:
        raise NotARun(
            f"error: {url}: not a completed run folder (no summary.json there; a run writes it last, "
            f"so an unfinished run has none)"
        ) from None
    except (OSError, json.JSONDecodeError) as e:
        raise NotARun(f"error: {url}: cannot read its summary.json: {e}") from None


def _write(out: str, page: str) -> str:
    import fsspec

    with fsspec.open(out, "w", encoding="utf-8") as f:
        f.write(page)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", metavar="RUN_DIR", help="a completed run folder (local path or fsspec URL)")
    ap.add_argument("--compare", metavar="OTHER_RUN_DIR", help="another completed run folder to compare with")
    ap.add_argument("--out", metavar="FILE", help="where to write the page (default: in RUN_DIR)")
    args = ap.parse_args(argv)

    from pipeline import report

    try:
        folder, summary = _completed(args.run_dir)
        if args.compare:
            other, other_summary = _completed(args.compare)
            names = [
                s.get("run_id") or f.url.rsplit("/", 1)[-1] for f, s in ((folder, summary), (other, other_summary))
            ]
            if names[0] == names[1]:
                names = [folder.url, other.url]
            page = report.compare(summary, other_summary, *names)
            name = f"compare-{other.url.rsplit('/', 1)[-1]}.html"
        else:
            page = report.render(summary, report.gather(folder, summary))
            name = report.REPORT
    except NotARun as e:
        print(e, file=sys.stderr)
        return 2
    where = _write(args.out, page) if args.out else folder.write_bytes(name, page.encode("utf-8"))
    print(f"report: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
