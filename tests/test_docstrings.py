"""Run the examples in every public docstring of the *installed* package."""
import doctest
import importlib
import inspect
import pkgutil

import pytest

import fastcorr

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(fastcorr.__path__, prefix="fastcorr.")
    if not name.startswith("fastcorr.tests")
)
OPTIONS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    if module_name == "fastcorr.dask":
        pytest.importorskip("dask.array")
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    for test in finder.find(module, module_name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module_name}"


@pytest.mark.parametrize("name", fastcorr.__all__)
def test_public_functions_have_examples(name):
    obj = getattr(fastcorr, name)
    if inspect.ismodule(obj):
        return
    doc = inspect.getdoc(obj) or ""
    assert "Examples" in doc and ">>>" in doc, f"fastcorr.{name} has no runnable example"
