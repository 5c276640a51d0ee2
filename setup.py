"""Second build description: setuptools + Cython, from the same sources as meson.

The primary build is meson-python (``pip install .``). This file builds the
same extensions with setuptools, e.g. ``python setup.py build_ext --inplace``;
CI exercises both. Keep ``EXTENSIONS`` in step with src/fastcorr/meson.build.
"""
import os
import subprocess
import sys
import sysconfig
import tempfile

from setuptools import Extension, setup

# Compiled modules, as dotted names below ``fastcorr``.
EXTENSIONS = [
    "methods.direct",
    "methods.im2col",
    "methods.conv_direct",
    "methods.winograd",
    "methods.separable",
    "methods.fft_kernels",
    "methods.window",
    "methods.normalized",
    "_engine.plain_call",
    "_engine.pointwise",
    "methods.nd_direct",
    "methods.integer",
    "_engine.piv_peaks",
    "_engine.registration_kernels",
]
PKG_DIR = os.path.join("src", "fastcorr")
PACKAGES = ["fastcorr", "fastcorr._api", "fastcorr._engine", "fastcorr.methods", "fastcorr._cli"]


def _compiler_accepts(flag):
    """True when the C compiler builds and links an OpenMP program with ``flag``."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    source = "#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(source)
        try:
            result = subprocess.run(
                [*cc, flag, path, "-o", os.path.join(tmp, "probe")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            return False
        return result.returncode == 0


def extensions():
    import numpy
    from Cython.Build import cythonize

    openmp = [] if os.environ.get("FASTCORR_NO_OPENMP") else ["-fopenmp"]
    if openmp and not _compiler_accepts(openmp[0]):
        print("fastcorr: the C compiler has no OpenMP; building serial kernels", file=sys.stderr)
        openmp = []
    native = ["-march=native"] if os.environ.get("FASTCORR_NATIVE") else []
    exts = [
        Extension(
            f"fastcorr.{name}",
            [os.path.join(PKG_DIR, *name.split(".")) + ".pyx"],
            include_dirs=[os.path.join(PKG_DIR, "_simd"), numpy.get_include()],
            define_macros=[("FC_BUILD_SYSTEM", '"setuptools"'),
                           ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=["-O3", "-fno-math-errno", *openmp, *native],
            extra_link_args=openmp,
        )
        for name in EXTENSIONS
    ]
    return cythonize(exts, compiler_directives={"language_level": 3})


setup(
    packages=PACKAGES,
    package_dir={"": "src"},
    # The .pxd files are the C-level API (and its old paths); the headers of
    # the SIMD kernels go along, as meson installs them, and so do py.typed and
    # the .pyi stubs of the compiled modules (for type checkers).
    package_data={
        "fastcorr": ["*.pxd", "py.typed", "_simd/*.h"],
        "fastcorr._engine": ["*.pyi"],
        "fastcorr.methods": ["*.pxd", "*.pyi"],
    },
    ext_modules=extensions(),
)
