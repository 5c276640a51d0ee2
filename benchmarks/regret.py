"""Dispatch regret and peer ratios over the issue-4 grid.

Usage::

    python benchmarks/regret.py            # full grid (long: tens of minutes)
    python benchmarks/regret.py --quick    # reduced grid (about a minute)
    python benchmarks/regret.py --errors   # normalised errors at the largest case

The implementation lives in ``fastcorr._cli.regret`` so that
``python -m fastcorr bench --regret`` runs the same code.
"""
import argparse

from fastcorr._cli.regret import errors, run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="reduced grid")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--images", type=int, nargs="*")
    p.add_argument("--errors", action="store_true", help="only the accuracy check at the largest case")
    args = p.parse_args(argv)
    if args.errors:
        errors(threads=args.threads)
        return
    run(quick=args.quick, threads=args.threads, images=args.images)


if __name__ == "__main__":
    main()
