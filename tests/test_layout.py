"""The package's layers (DESIGN §1): imports only point down.

Reads the import statements of every module of the package
(.py by its syntax tree, .pyx / .pxd by their import and cimport lines,
docstrings and comments left out) and checks each against the layer order:

    _cli (and __main__)  >  public API (fastcorr/*.py, _api)  >  _engine  >  methods
"""
import ast
import os
import re

import pytest

import fastcorr

# The source tree when the tests run from a clone (it has the .pyx files an
# installed package lacks), else the installed package.
SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "fastcorr")
ROOT = SOURCE if os.path.isdir(SOURCE) else os.path.dirname(os.path.abspath(fastcorr.__file__))
RANK = {"_cli": 3, "api": 2, "_engine": 1, "methods": 0}


def layer(module):
    """Layer name of a dotted module below ``fastcorr`` (None: not ours)."""
    parts = module.split(".")
    if parts[0] != "fastcorr":
        return None
    if len(parts) > 1 and parts[1] == "__main__":
        return "_cli"
    if len(parts) > 1 and parts[1] == "_version":  # a constant any layer may read
        return "methods"
    if parts[1:2] and parts[1] in ("_cli", "_engine", "methods"):
        return parts[1]
    return "api"  # the top-level .pxd aliases and anything new at the top


def modules():
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith((".py", ".pyx", ".pxd")):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(ROOT))
                dotted = rel.rsplit(".", 1)[0].replace(os.sep, ".")
                if dotted.endswith(".__init__"):
                    dotted = dotted[: -len(".__init__")]
                yield path, dotted


def imports(path, dotted):
    """Absolute names of the fastcorr modules ``path`` imports."""
    package = dotted if path.endswith("__init__.py") else dotted.rsplit(".", 1)[0]
    found = set()
    if path.endswith(".py"):
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                found.update(f"{base}.{a.name}" if not node.module else base for a in node.names)
    else:
        code = re.sub(r'"""(.|\n)*?"""', "", open(path).read())
        for line in code.splitlines():
            m = re.match(r"\s*(?:from\s+(\S+)\s+c?import|c?import\s+(\S+))", line)
            if m:
                found.add(m.group(1) or m.group(2))
    return {name for name in found if name.startswith("fastcorr")}


CASES = sorted(modules())


def test_every_layer_has_modules():
    assert {layer(d) for _, d in CASES} >= set(RANK)


@pytest.mark.parametrize("path,dotted", CASES, ids=[d for _, d in CASES])
def test_imports_point_down(path, dotted):
    own = layer(dotted)
    for name in imports(path, dotted):
        other = layer(name)
        assert RANK[other] <= RANK[own], f"{dotted} ({own}) imports {name} ({other}): up a layer"


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from .._api import signal\n")
    names = imports(str(bad), "fastcorr.methods.bad")
    assert names == {"fastcorr._api"} and RANK[layer("fastcorr._api")] > RANK["methods"]
