"""`python -m fa3`: print what this installation can run; `--smoke` also runs the GPU smoke test."""
import argparse
import sys

from ._ext import hopper_available, report


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m fa3", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="run the GPU smoke kernels (needs a Hopper GPU)")
    args = parser.parse_args()
    print(report())
    if args.smoke:
        if not hopper_available():
            print("smoke: skipped, no Hopper GPU", file=sys.stderr)
            return 1
        from .smoke import run_smoke
        print(run_smoke())
    return 0


sys.exit(main())
