"""Command line: ``python -m fastcorr {info,demo,bench}``."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastcorr", description="fast 2-D correlation and convolution")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print the build and runtime configuration")
    sub.add_parser("demo", help="walk through the textbook chapter 'Convolutions for Images'")
    bench = sub.add_parser("bench", help="time every method and the installed peers on this machine")
    bench.add_argument("--images", type=int, nargs="+", default=[256, 1024], help="square image sizes")
    bench.add_argument("--kernels", type=int, nargs="+", default=[3, 5, 7, 11, 17, 31, 63], help="square kernel sizes")
    bench.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    bench.add_argument("--threads", type=int, default=None, help="threads for fastcorr and every peer")
    bench.add_argument("--plot", metavar="FILE.png", help="draw time vs kernel size (needs matplotlib)")
    bench.add_argument("--json", metavar="FILE", help="write the raw numbers as JSON")
    args = parser.parse_args(argv)
    if args.command == "info":
        from . import show_config

        show_config()
    elif args.command == "demo":
        from ._demo import run

        run()
    elif args.command == "bench":
        from . import _bench

        return _bench.main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
