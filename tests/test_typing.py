"""The typed public API: ``mypy --strict`` on code that uses it as a user would.

``tests/typing/use_public_api.py`` (and ``use_dask_api.py`` when dask is
installed) call every public function with its result assigned to a variable
of the promised type; mypy checks them against the package it finds installed
(its annotations, ``py.typed`` and the ``.pyi`` stubs of the compiled
modules). Skipped when mypy is not installed (it is in the ``test`` extra).
"""
import importlib.util
import os
import runpy
import subprocess
import sys
import typing

import pytest

import fastcorr
from fastcorr._engine import dispatch, validate

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "typing")
PUBLIC = os.path.join(HERE, "use_public_api.py")
DASK = os.path.join(HERE, "use_dask_api.py")
NDIMAGE = os.path.join(HERE, "use_ndimage_api.py")
HAVE_DASK = importlib.util.find_spec("dask") is not None
#: The folder holding the imported ``fastcorr`` package.
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastcorr.__file__)))


@pytest.fixture(scope="module")
def mypy(tmp_path_factory):
    """Run ``mypy --strict`` on files; returns (exit code, output)."""
    pytest.importorskip("mypy")
    cache = tmp_path_factory.mktemp("mypy-cache")
    cwd = tmp_path_factory.mktemp("mypy-cwd")  # mypy searches its working directory first: not the source tree

    def run(*files):
        # dask's own functions are partly unannotated: calling them is dask's
        # business (--untyped-calls-exclude), fastcorr's still are checked.
        cmd = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache),
               "--untyped-calls-exclude=dask", "--no-color-output", "--no-error-summary", *files]
        env = dict(os.environ)
        if "site-packages" not in PACKAGE_ROOT and "dist-packages" not in PACKAGE_ROOT:
            # an editable or PYTHONPATH install: mypy does not follow import
            # hooks, so show it the tree the package is imported from
            # (and, as for an installed package, report only the files named)
            env["MYPYPATH"] = PACKAGE_ROOT
            cmd.insert(-len(files), "--follow-imports=silent")
        result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        return result.returncode, result.stdout + result.stderr

    return run


def test_public_api_passes_mypy_strict(mypy):
    files = [PUBLIC, DASK, NDIMAGE] if HAVE_DASK else [PUBLIC, NDIMAGE]
    code, output = mypy(*files)
    assert code == 0, f"mypy --strict {' '.join(map(os.path.basename, files))} failed:\n{output}"


def test_mypy_sees_the_types(mypy, tmp_path):
    # Not vacuous: a wrong type for a result, a wrong choice string and a
    # wrong unpacking are each an error.
    bad = tmp_path / "bad_use.py"
    bad.write_text(
        "import numpy as np\n"
        "import fastcorr\n"
        "x = np.ones((4, 4))\n"
        "out: int = fastcorr.correlate2d(x, x)\n"
        "fastcorr.correlate2d(x, x, mode='sam')\n"
        "gx, gw = fastcorr.conv2d_backward(x[None, None], x[None, None], x[None, None])\n"
    )
    code, output = mypy(str(bad))
    assert code == 1, output
    assert "bad_use.py:4: error: Incompatible types in assignment" in output, output
    assert "bad_use.py:5: error: Argument \"mode\" to \"correlate2d\"" in output, output
    assert "bad_use.py:6: error: Too many values to unpack" in output, output


def test_use_files_run():
    # The files are real programs: the calls mypy checks also work.
    runpy.run_path(PUBLIC, run_name="__main__")
    runpy.run_path(NDIMAGE, run_name="__main__")
    if HAVE_DASK:
        runpy.run_path(DASK, run_name="__main__")


@pytest.mark.parametrize("alias,values", [
    (validate.Mode, validate.MODES),
    (validate.Boundary, tuple(validate.BOUNDARIES)),
    (validate.SignalMethod, validate.SIGNAL_METHODS),
    (validate.ChosenMethod, dispatch.METHODS),
    (validate.ConvMethod, validate.CONV_METHODS),
    (validate.PaddingMode, validate.PADDING_MODES),
    (validate.MatchMethodName, validate.MATCH_METHODS),
    (validate.PadMode, validate.PAD_MODES),
    (validate.Subpixel, validate.SUBPIXEL[1:]),
    (validate.NormalizedBoundary, validate.NORMALIZED_BOUNDARIES[1:]),
    (validate.NanTreatment, validate.NAN_TREATMENTS),
    (validate.NdimageMode, tuple(validate.NDIMAGE_MODES)),
    (validate.NdimageMethod, validate.NDIMAGE_METHODS),
    (validate.PivCorrelationMethod, validate.PIV_CORRELATION_METHODS),
    (validate.PivSubpixelMethod, validate.PIV_SUBPIXEL_METHODS),
    (validate.PivSig2NoiseName, validate.PIV_SIG2NOISE_METHODS[:2]),
], ids=["Mode", "Boundary", "SignalMethod", "ChosenMethod", "ConvMethod", "PaddingMode", "MatchMethodName",
        "PadMode", "Subpixel", "NormalizedBoundary", "NanTreatment", "NdimageMode", "NdimageMethod",
        "PivCorrelationMethod", "PivSubpixelMethod", "PivSig2NoiseName"])
def test_literal_types_list_the_accepted_values(alias, values):
    assert typing.get_args(alias) == tuple(values)
