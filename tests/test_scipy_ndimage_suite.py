"""scipy's own ndimage filter tests, run against ``fastcorr.ndimage``.

The tests are read from the installed scipy (``scipy/ndimage/tests/test_filters.py``
ships in the wheel) and run unchanged, with scipy.ndimage's functions that
fastcorr.ndimage implements (``OURS``) replaced by fastcorr's while each test
runs: the attributes of ``scipy.ndimage`` (the tests call ``ndimage.correlate(...)``)
and parametrized arguments whose value is one of those functions (found by
identity). scipy's other filters (median, rank, generic ...), which some of
the tests use as references, stay scipy's, and so do scipy's internals.

Only the tests listed in ``SELECTED`` run (those that exercise our
functions); a counting wrapper checks that each run instance calls fastcorr,
and skips the parametrized instances whose filter is not one of ours (e.g.
``test_filter_axes`` with ``ndimage.median_filter``). ``test_selected_exist``
fails when scipy renamed or dropped a selected test. If scipy was built
without its tests, the module is skipped.
"""
import functools
import inspect
import json
import os
import warnings

import numpy as np
import pytest
import scipy
import scipy.ndimage

import fastcorr.ndimage

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        import scipy.ndimage.tests.test_filters as sp_tests
except ModuleNotFoundError as exc:
    if not (exc.name or "").startswith("scipy.ndimage.tests"):
        raise
    pytest.skip(f"scipy {scipy.__version__} is installed without its tests ({exc})", allow_module_level=True)
except ImportError as exc:  # e.g. hypothesis missing
    pytest.skip(f"scipy's ndimage tests cannot be imported here ({exc})", allow_module_level=True)

try:
    from scipy._lib._array_api import array_namespace
except ImportError:  # pragma: no cover
    array_namespace = None

OURS = ("correlate", "convolve", "correlate1d", "convolve1d", "gaussian_filter", "gaussian_filter1d",
        "uniform_filter", "uniform_filter1d", "sobel", "prewitt", "laplace")
SCIPY_FUNCS = {name: getattr(scipy.ndimage, name) for name in OURS}

#: Set FASTCORR_NDIMAGE_DISCOVER=<file.json> to run every scipy filter test
#: and record which call fastcorr (how SELECTED was made).
DISCOVER = os.environ.get("FASTCORR_NDIMAGE_DISCOVER")

#: The scipy tests (class::name or name) that exercise fastcorr.ndimage's functions.
SELECTED = None  # filled below

_F32_REASON = (
    "float32 computed in float32 (DESIGN 2.11): this test compares the sum of two float32 "
    "gaussian_filter outputs of ~200 with scipy's gaussian_laplace (computed in float64, rounded "
    "once) to 6 decimals, below one float32 step there (1.5e-5); fastcorr is 2 steps off, "
    "within its 1e-5 normalised error")
#: scipy tests (or some of their instances) selected but expected to fail:
#: test id -> (which instances, by their arguments; the reason).
XFAIL = {
    "TestNdimageFilters::test_gaussian_laplace01": (
        lambda kw: np.dtype(kw.get("dtype")) in (np.float32, np.complex64), _F32_REASON),
    "TestNdimageFilters::test_gaussian_laplace02": (
        lambda kw: np.dtype(kw.get("dtype")) in (np.float32, np.complex64), _F32_REASON),
    "test_gaussian_filter_float16": (
        lambda kw: True,
        "fastcorr.ndimage accepts float16 (computed in float32, as fastcorr's correlate2d does) "
        "where scipy.ndimage raises RuntimeError"),
}


def _counting(name, calls):
    impl = getattr(fastcorr.ndimage, name)

    @functools.wraps(impl)
    def substitute(*args, **kwargs):
        calls[name] += 1
        return impl(*args, **kwargs)

    return substitute


def _on_fastcorr(test, test_id):
    """``test`` run with fastcorr.ndimage's functions in place of scipy's."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        if test_id in XFAIL and XFAIL[test_id][0](kwargs):
            pytest.xfail(XFAIL[test_id][1])
        calls = dict.fromkeys(OURS, 0)
        subs = {name: _counting(name, calls) for name in OURS}
        by_id = {id(f): subs[n] for n, f in SCIPY_FUNCS.items()}
        kwargs = {k: by_id.get(id(v), v) for k, v in kwargs.items()}
        with pytest.MonkeyPatch.context() as mp:
            for name in OURS:
                mp.setattr(scipy.ndimage, name, subs[name])
            try:
                test(*args, **kwargs)
            finally:
                if DISCOVER:
                    _record(test_id, sum(calls.values()))
        if sum(calls.values()) == 0:
            if DISCOVER:
                return
            pytest.skip("this instance calls none of fastcorr.ndimage's functions")

    return run


def _record(test_id, n):
    try:
        with open(DISCOVER) as f:
            seen = json.load(f)
    except (OSError, ValueError):
        seen = {}
    seen[test_id] = seen.get(test_id, 0) + n
    with open(DISCOVER, "w") as f:
        json.dump(seen, f)


def _selected(test_id):
    return DISCOVER or test_id in SELECTED


def _fastcorr_class(base):
    ns = {"__module__": __name__, "__qualname__": base.__name__,
          "__doc__": f"scipy.ndimage's {base.__name__}, run on fastcorr.ndimage."}
    names = dict.fromkeys(attr for klass in reversed(base.__mro__) for attr in vars(klass))
    for attr in names:
        value = getattr(base, attr)
        if attr.startswith("test") and callable(value):
            tid = f"{base.__name__}::{attr}"
            # not selected: hidden (None is not collected)
            ns[attr] = _on_fastcorr(value, tid) if _selected(tid) else None
    return type(base.__name__, (base,), ns)


SELECTED = set(json.load(open(os.path.join(os.path.dirname(__file__), "scipy_ndimage_selected.json")))) \
    if not DISCOVER else set()

for _name, _value in list(vars(sp_tests).items()):
    if _name.startswith("Test") and inspect.isclass(_value):
        if DISCOVER or any(s.startswith(_name + "::") for s in SELECTED):
            globals()[_name] = _fastcorr_class(_value)
    elif _name.startswith("test") and callable(_value) and _selected(_name):
        globals()[_name] = _on_fastcorr(_value, _name)
del _name, _value


@pytest.fixture(params=[pytest.param(np, id="numpy")])
def xp(request):
    """scipy's ``xp`` fixture, NumPy only."""
    for kind in ("skip", "xfail"):
        for mark in request.node.iter_markers(f"{kind}_xp_backends"):
            if mark.args and mark.args[0] == "numpy":
                getattr(pytest, kind)(mark.kwargs.get("reason") or "not run with NumPy")
    return array_namespace(np.empty(0)) if array_namespace is not None else np


def test_selected_exist():
    """Every selected scipy test still exists in the installed scipy."""
    missing = []
    for tid in SELECTED:
        owner, _, attr = tid.rpartition("::")
        obj = getattr(sp_tests, owner, None) if owner else sp_tests
        if obj is None or not callable(getattr(obj, attr, None)):
            missing.append(tid)
    assert not missing, f"scipy {scipy.__version__} renamed or dropped these selected tests: {sorted(missing)}"


@pytest.fixture
def num_parallel_threads():
    """pytest-run-parallel's fixture (some scipy tests ask for it): one thread here."""
    return 1
