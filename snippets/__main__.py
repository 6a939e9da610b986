"""Command line for the demos.

python -m snippets                          # list the demos
python -m snippets run cnn/convolution      # run one at its real preset
python -m snippets run convolution --tiny --out /tmp/conv
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from snippets.registry import DemoError, discover, resolve, run_in_process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m snippets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run one demo and print its metrics as JSON")
    run.add_argument("name", help="demo name, e.g. cnn/convolution or convolution")
    run.add_argument(
        "--tiny", action="store_true", help="the seconds-long smoke preset"
    )
    run.add_argument(
        "--out", type=Path, default=None, help="where figures go (out/<name>)"
    )
    args = parser.parse_args(argv)

    if args.command is None:
        for name, demo in discover().items():
            doc = (
                demo.path.read_text(encoding="utf-8")
                .split('"""')[1]
                .strip()
                .splitlines()[0]
            )
            print(f"{name:28s} {doc}")
        return 0
    try:
        demo = resolve(args.name)
    except KeyError as err:
        parser.error(str(err.args[0]))
    out = args.out or Path("out") / demo.slug
    try:
        metrics = run_in_process(args.name, args.tiny, out)
    except DemoError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"figures in {out}/", file=sys.stderr)
    print(json.dumps(metrics, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
