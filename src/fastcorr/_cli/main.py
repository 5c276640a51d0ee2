"""Command line: ``python -m fastcorr {info,demo,calibrate,bench}`` (also the ``fastcorr`` script)."""
import argparse
import json
import importlib

#: ``bench --<flag>``: the module in this package whose ``main(args)`` times
#: that family against its peers, and the flag's help.
FAMILY_BENCHES = (
    ("matching", "matching_bench", "match_template against cv2.matchTemplate and skimage (if installed)"),
    ("nd", "nd_bench", "N-D correlate (1-D, lags, 3-D) against scipy.signal.correlate"),
    ("layers", "layers_bench", "conv2d forward/backward on five CNN layers against torch (if installed)"),
    ("ndimage", "ndimage_bench", "fastcorr.ndimage against scipy.ndimage, scipy.signal and OpenCV (if installed)"),
    ("piv", "piv_bench", "piv against OpenPIV's extended_search_area_piv (if installed)"),
    ("large", "large_bench",
     "large kernels (21x21-101x101, 1024²/4096²) against cv2.filter2D, ducc0 and scipy.fft"),
    ("registration", "registration_bench", "phase_cross_correlation against scikit-image (if installed)"),
    ("normalized", "normalized_bench",
     "normalized_convolution against astropy's convolve and convolve_fft (if installed)"),
)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastcorr", description="fast 2-D correlation and convolution")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print the build and runtime configuration")
    sub.add_parser("demo", help="walk through the textbook chapter 'Convolutions for Images'")
    cal = sub.add_parser("calibrate", help="measure the dispatch cost-model constants (a few seconds)")
    cal.add_argument("--output", default=None, help="JSON file (default: the user cache directory)")
    cal.add_argument("--threads", type=int, default=None)
    bench = sub.add_parser("bench", help="time every method and the installed peers on this machine")
    bench.add_argument("--images", type=int, nargs="+", default=None,
                       help="square image sizes (default 256 1024; with --regret: the grid's)")
    bench.add_argument("--kernels", nargs="+", default=None,
                       help="square kernel sizes (default 3 5 7 11 17 31 63; with --regret: the grid's, "
                            "where g31 is the 31x31 Gaussian)")
    bench.add_argument("--dtype", default="float32",
                       choices=["float32", "float64", "uint8", "uint16", "int16", "int32"],
                       help="integer dtypes also time fastcorr on the same image as float32")
    bench.add_argument("--threads", type=int, default=None, help="threads for fastcorr and every peer")
    bench.add_argument("--plot", metavar="FILE.png", help="draw time vs kernel size (needs matplotlib)")
    bench.add_argument("--json", metavar="FILE", help="write the raw numbers as JSON")
    bench.add_argument("--regret", action="store_true", help="instead: dispatch regret and peer ratios on the issue grid")
    bench.add_argument("--quick", action="store_true",
                       help="with --regret, --matching, --ndimage, --nd, --piv, --registration or --normalized: "
                            "reduced grid (seconds, not minutes)")
    for flag, _, text in FAMILY_BENCHES:
        bench.add_argument(f"--{flag}", action="store_true", help=f"instead: {text}")
    bench.add_argument("--cpu", action="store_true",
                       help="with --normalized: CPU time instead of the wall clock (a loaded machine, 1 thread)")
    args = parser.parse_args(argv)
    if args.command == "info":
        from fastcorr import show_config

        show_config()
    elif args.command == "demo":
        from .demo import run

        run()
    elif args.command == "calibrate":
        return calibrate_command(args)
    elif args.command == "bench":
        return bench_command(args)
    return 0


def calibrate_command(args):
    """``python -m fastcorr calibrate``: measure and store the cost-model constants."""
    from fastcorr._engine import calibrate, costmodel

    path = args.output or costmodel.calibration_path()
    calibrate.calibrate(path, threads=args.threads, verbose=True)
    print(f"stored in {path}")
    return 0


def bench_command(args):
    """``python -m fastcorr bench``: the method/peer table, or ``--regret``."""
    if args.regret:
        from .regret import run

        kernels = [k if k == "g31" else _kernel_size(k) for k in args.kernels] if args.kernels else None
        rows = run(quick=args.quick, threads=args.threads or 2, images=args.images, kernels=kernels)
        if args.json:  # rows of several runs (e.g. the 4096² row apart) can be pooled
            with open(args.json, "w") as f:
                json.dump([{k: v for k, v in r.items() if k != "shape"} for r in rows], f, indent=1)
            print(f"raw numbers written to {args.json}")
        return 0
    for flag, module, _ in FAMILY_BENCHES:
        if getattr(args, flag):
            return importlib.import_module(f".{module}", __package__).main(args)
    from . import bench

    args.images = args.images or [256, 1024]
    args.kernels = [_kernel_size(k) for k in args.kernels] if args.kernels else [3, 5, 7, 11, 17, 31, 63]
    return bench.main(args)


def _kernel_size(text):
    try:
        return int(text)
    except ValueError:
        raise SystemExit(f"fastcorr bench: --kernels takes square kernel sizes (integers), got {text!r}") from None

