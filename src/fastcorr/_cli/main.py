"""Command line: ``python -m fastcorr {info,demo,calibrate,bench}`` (also the ``fastcorr`` script)."""
import argparse


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastcorr", description="fast 2-D correlation and convolution")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print the build and runtime configuration")
    sub.add_parser("demo", help="walk through the textbook chapter 'Convolutions for Images'")
    cal = sub.add_parser("calibrate", help="measure the dispatch cost-model constants (a few seconds)")
    cal.add_argument("--output", default=None, help="JSON file (default: the user cache directory)")
    cal.add_argument("--threads", type=int, default=None)
    bench = sub.add_parser("bench", help="time every method and the installed peers on this machine")
    bench.add_argument("--images", type=int, nargs="+", default=[256, 1024], help="square image sizes")
    bench.add_argument("--kernels", type=int, nargs="+", default=[3, 5, 7, 11, 17, 31, 63], help="square kernel sizes")
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
    bench.add_argument("--matching", action="store_true",
                       help="instead: match_template against cv2.matchTemplate and skimage (if installed)")
    bench.add_argument("--layers", action="store_true",
                       help="instead: conv2d forward/backward on five CNN layers against torch (if installed)")
    bench.add_argument("--ndimage", action="store_true",
                       help="instead: fastcorr.ndimage against scipy.ndimage, scipy.signal and OpenCV (if installed)")
    bench.add_argument("--nd", action="store_true",
                       help="instead: N-D correlate (1-D, lags, 3-D) against scipy.signal.correlate")
    bench.add_argument("--piv", action="store_true",
                       help="instead: piv against OpenPIV's extended_search_area_piv (if installed)")
    bench.add_argument("--large", action="store_true",
                       help="instead: large kernels (21x21-101x101, 1024²/4096²) against cv2.filter2D, ducc0 and scipy.fft")
    bench.add_argument("--registration", action="store_true",
                       help="instead: phase_cross_correlation against scikit-image (if installed)")
    bench.add_argument("--normalized", action="store_true",
                       help="instead: normalized_convolution against astropy's convolve and convolve_fft (if installed)")
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

        run(quick=args.quick, threads=args.threads or 2)
        return 0
    if args.matching:
        from . import matching_bench

        return matching_bench.main(args)
    if getattr(args, "nd", False):
        from . import nd_bench

        return nd_bench.main(args)
    if args.layers:
        from . import layers_bench

        return layers_bench.main(args)
    if args.ndimage:
        from . import ndimage_bench

        return ndimage_bench.main(args)
    if args.piv:
        from . import piv_bench

        return piv_bench.main(args)
    if getattr(args, "large", False):
        from . import large_bench

        return large_bench.main(args)
    if getattr(args, "registration", False):
        from . import registration_bench

        return registration_bench.main(args)
    if args.normalized:
        from . import normalized_bench

        return normalized_bench.main(args)
    from . import bench

    return bench.main(args)

