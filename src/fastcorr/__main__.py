"""Command line: ``python -m fastcorr {info,demo,bench}``."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastcorr", description="fast 2-D correlation and convolution")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print the build and runtime configuration")
    sub.add_parser("demo", help="walk through the textbook chapter 'Convolutions for Images'")
    args = parser.parse_args(argv)
    if args.command == "info":
        from . import show_config

        show_config()
    elif args.command == "demo":
        from ._demo import run

        run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
