"""scipy's own ``TestConvolve2d`` / ``TestCorrelate2d`` tests, run against fastcorr.

The tests are read from the installed scipy (``scipy/signal/tests/test_signaltools.py``
ships in the wheel) and run unchanged, with scipy's 2-D functions replaced by
fastcorr's while each test runs:

* the names the test module binds to ``scipy.signal.convolve2d`` /
  ``correlate2d`` (found by identity, so also under other names), and
  ``scipy.signal.convolve2d`` / ``correlate2d`` themselves (the tests call
  ``signal.convolve2d(...)`` too);
* parametrized arguments whose value is one of scipy's 2-D functions
  (``test_same_with_boundary`` takes ``func`` from ``[convolve2d, correlate2d]``,
  bound when scipy's module was imported).

Nothing else is replaced: ``signal.convolve`` / ``signal.correlate``, which some
of these tests use as the reference, stay scipy's.  Every test must call
fastcorr at least once (a counting wrapper checks), except those listed in
``NO_2D_CALL``.

scipy's tests use the ``xp`` fixture and markers of scipy's own conftest, which
is not loaded here: ``xp`` below is NumPy only (the id ``numpy`` as in scipy),
and honours ``skip_xp_backends`` / ``xfail_xp_backends`` for NumPy (none of
these tests excludes it) and ``xfail_on_32bit``.

``EXPECTED`` names the scipy tests that must be collected; ``test_collected``
fails when one is missing (a scipy upgrade that renamed or dropped it) and
warns about new ones (they run too).  If scipy was built without its tests,
the module is skipped.
"""
import functools
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy
import scipy.signal

import fastcorr

try:
    with warnings.catch_warnings():
        # scipy's markers are registered by scipy's conftest, which is not ours.
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        import scipy.signal.tests.test_signaltools as sp_tests
except ModuleNotFoundError as exc:
    if not (exc.name or "").startswith("scipy.signal.tests"):
        raise
    pytest.skip(f"scipy {scipy.__version__} is installed without its tests ({exc})",
                allow_module_level=True)

try:
    from scipy._lib._array_api import array_namespace
except ImportError:  # pragma: no cover - a scipy without array API support
    array_namespace = None

#: The scipy tests this file must run: node ids below this module.
EXPECTED = [
    "TestConvolve2d::test_2d_arrays[numpy]",
    "TestConvolve2d::test_valid_mode[numpy]",
    "TestConvolve2d::test_valid_mode_complx[numpy]",
    "TestConvolve2d::test_fillvalue[numpy]",
    "TestConvolve2d::test_fillvalue_errors[numpy]",
    "TestConvolve2d::test_fillvalue_empty[numpy]",
    "TestConvolve2d::test_wrap_boundary[numpy]",
    "TestConvolve2d::test_sym_boundary[numpy]",
    "TestConvolve2d::test_same_with_boundary[numpy-symm-expected0-convolve2d]",
    "TestConvolve2d::test_same_with_boundary[numpy-symm-expected0-correlate2d]",
    "TestConvolve2d::test_same_with_boundary[numpy-wrap-expected1-convolve2d]",
    "TestConvolve2d::test_same_with_boundary[numpy-wrap-expected1-correlate2d]",
    "TestConvolve2d::test_boundary_extension_same[numpy]",
    "TestConvolve2d::test_boundary_extension_full[numpy]",
    "TestConvolve2d::test_invalid_shapes[numpy]",
    "TestConvolve2d::test_same_mode[numpy]",
    "TestConvolve2d::test_valid_mode2[numpy]",
    "TestConvolve2d::test_consistency_convolve_funcs[numpy]",
    "TestConvolve2d::test_invalid_dims[numpy]",
    "TestConvolve2d::test_large_array[numpy]",
    "TestCorrelate2d::test_consistency_correlate_funcs[numpy]",
    "TestCorrelate2d::test_consistency_correlate_funcs_2[numpy]",
    "TestCorrelate2d::test_invalid_shapes[numpy]",
    "TestCorrelate2d::test_complex_input[numpy]",
]

#: Tests of these classes that call no 2-D function (exempt from the call check):
#: scipy's test compares np.correlate with signal.correlate only.
NO_2D_CALL = {"TestCorrelate2d::test_consistency_correlate_funcs"}

# scipy's functions, captured before any test replaces them.
SCIPY_2D = {"convolve2d": scipy.signal.convolve2d, "correlate2d": scipy.signal.correlate2d}


def _counting(name, calls):
    """fastcorr's function ``name``, counting its calls in ``calls[name]``."""
    impl = getattr(fastcorr, name)

    @functools.wraps(impl)
    def substitute(*args, **kwargs):
        calls[name] += 1
        return impl(*args, **kwargs)

    return substitute


def _patch_targets():
    """(namespace, attribute, scipy function name) for every place to replace."""
    targets = [(scipy.signal, name, name) for name in SCIPY_2D]
    for attr, value in vars(sp_tests).items():
        for name, func in SCIPY_2D.items():
            if value is func:
                targets.append((sp_tests, attr, name))
    return targets


def _on_fastcorr(test, test_id):
    """``test`` (a scipy test method) run with fastcorr's 2-D functions in place."""

    @functools.wraps(test)  # keeps the signature (fixtures) and the marks
    def run(*args, **kwargs):
        if test_id.endswith("test_large_array") and os.environ.get("FASTCORR_SANITIZER") == "1":
            pytest.skip("6 GB of arrays: run by the plain builds, not under AddressSanitizer")
        calls = dict.fromkeys(SCIPY_2D, 0)
        subs = {name: _counting(name, calls) for name in SCIPY_2D}
        by_id = {id(func): subs[name] for name, func in SCIPY_2D.items()}
        kwargs = {k: by_id.get(id(v), v) for k, v in kwargs.items()}
        with pytest.MonkeyPatch.context() as mp:
            for namespace, attr, name in _patch_targets():
                mp.setattr(namespace, attr, subs[name])
            test(*args, **kwargs)
        if test_id not in NO_2D_CALL:
            assert sum(calls.values()) > 0, f"scipy's {test_id} passed without calling fastcorr"

    return run


def _fastcorr_class(base):
    """A subclass of scipy's test class whose test methods run on fastcorr."""
    ns = {"__module__": __name__, "__qualname__": base.__name__,
          "__doc__": f"scipy.signal's {base.__name__}, run on fastcorr."}
    names = dict.fromkeys(attr for klass in reversed(base.__mro__) for attr in vars(klass))  # source order
    for attr in names:
        value = getattr(base, attr)
        if attr.startswith("test") and callable(value):
            ns[attr] = _on_fastcorr(value, f"{base.__name__}::{attr}")
    return type(base.__name__, (base,), ns)


TestConvolve2d = _fastcorr_class(sp_tests.TestConvolve2d)
TestCorrelate2d = _fastcorr_class(sp_tests.TestCorrelate2d)


@pytest.fixture(params=[pytest.param(np, id="numpy")])
def xp(request):
    """scipy's ``xp`` fixture, NumPy only."""
    for kind in ("skip", "xfail"):
        for mark in request.node.iter_markers(f"{kind}_xp_backends"):
            if mark.args and mark.args[0] == "numpy":
                getattr(pytest, kind)(mark.kwargs.get("reason") or "not run with NumPy")
    mark = request.node.get_closest_marker("xfail_on_32bit")
    if mark is not None and np.intp(0).itemsize < 8:
        pytest.xfail(f"fails on 32-bit platforms: {mark.args[0] if mark.args else ''}")
    return array_namespace(np.empty(0)) if array_namespace is not None else np


def test_collected():
    """All of EXPECTED are collected (pytest's own ids, whatever this run selects)."""
    here = os.path.abspath(__file__)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-o", "addopts=",
         "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestUnknownMarkWarning", here],
        cwd=os.path.dirname(os.path.dirname(here)), capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, f"collecting scipy's tests failed:\n{out.stdout}\n{out.stderr}"
    ids = [line.split("::", 1)[1] for line in out.stdout.splitlines() if "::Test" in line]
    missing = [i for i in EXPECTED if i not in ids]
    assert not missing, (
        f"{len(missing)} of scipy's {len(EXPECTED)} 2-D tests were not collected "
        f"(scipy {scipy.__version__} renamed or dropped them?): {missing}; collected: {ids}"
    )
    extra = [i for i in ids if i not in EXPECTED]
    if extra:
        warnings.warn(f"scipy {scipy.__version__} has 2-D tests not in EXPECTED (they ran too): {extra}",
                      stacklevel=1)
