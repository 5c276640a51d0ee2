"""Command line: ``python -m fastcorr {info,demo,bench}``."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastcorr", description="fast 2-D correlation and convolution")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print the build and runtime configuration")
    cal = sub.add_parser("calibrate", help="measure the dispatch cost-model constants (a few seconds)")
    cal.add_argument("--output", default=None, help="JSON file (default: the user cache directory)")
    cal.add_argument("--threads", type=int, default=None)
    bench = sub.add_parser("bench", help="benchmarks")
    bench.add_argument("--regret", action="store_true", help="dispatch regret and peer ratios")
    bench.add_argument("--quick", action="store_true", help="reduced grid (seconds, not minutes)")
    bench.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "info":
        from . import show_config

        show_config()
    elif args.command == "calibrate":
        return calibrate_command(args)
    elif args.command == "bench":
        return bench_command(args)
    return 0


def calibrate_command(args):
    """``python -m fastcorr calibrate``: measure and store the cost-model constants."""
    from . import _dispatch

    path = args.output or _dispatch.calibration_path()
    _dispatch.calibrate(path, threads=args.threads, verbose=True)
    print(f"stored in {path}")
    return 0


def bench_command(args):
    """``python -m fastcorr bench --regret``: the dispatch-regret benchmark."""
    if not args.regret:
        print("only 'bench --regret' is available in this build", file=sys.stderr)
        return 2
    from ._regret import run

    run(quick=args.quick, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
