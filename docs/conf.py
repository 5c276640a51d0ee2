"""Sphinx configuration of fastcorr's documentation site.

Build (from the repository root, with fastcorr and the ``docs`` extra
installed: ``pip install ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Warnings are errors. The build runs the gallery's examples
(``docs/examples/plot_*.py``) and needs no network.
"""
import os

import fastcorr

project = "fastcorr"
author = "the fastcorr developers"
copyright = "the fastcorr developers"
release = fastcorr.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
# No sphinx.ext.intersphinx: CI has no network beyond the package registries.

root_doc = "index"
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# examples/ holds the gallery's sources; sphinx-gallery turns them into auto_examples/.
exclude_patterns = ["_build", "examples", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# -- API reference -------------------------------------------------------------
# Pages are generated from the docstrings of the public names, listed in api/*.rst.
autosummary_generate = True
autodoc_typehints = "none"
autodoc_member_order = "bysource"
# numpydoc renders the Parameters/Returns/... sections. Class members are listed
# by the autosummary class template, not by numpydoc (it would want a stub page
# for every method).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# numpydoc's docstring checks, as build warnings (so errors with -W). "all" but:
# - style rules the project does not follow: SA01 (See Also), EX01 (Examples),
#   ES01 (extended summary), GL08 (no docstring: private helpers);
# - rules that some public docstrings break today (listed, with fixes, for src/):
#   PR01 PR03 PR04 PR07 PR08 RT01 RT03 RT04 YD01 SS02 SS05 GL06 GL07.
#   Drop a code from this set once its docstrings are fixed.
numpydoc_validation_checks = {
    "all",
    "SA01", "EX01", "ES01", "GL08",
    "PR01", "PR03", "PR04", "PR07", "PR08", "RT01", "RT03", "RT04", "YD01",
    "SS02", "SS05", "GL06", "GL07",
}

# -- Markdown pages (user guide) ----------------------------------------------
myst_heading_anchors = 3

# -- Gallery -------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "image_scrapers": ("matplotlib",),
    "download_all_examples": False,
    # "Examples using fastcorr.xxx" on each API page (see _templates/autosummary).
    "doc_module": ("fastcorr",),
    "backreferences_dir": os.path.join("api", "generated", "backreferences"),
    "reference_url": {"fastcorr": None},
    "remove_config_comments": True,
    # A failing example fails the build.
    "only_warn_on_example_error": False,
}

# -- HTML ----------------------------------------------------------------------
html_theme = "alabaster"  # ships with Sphinx: nothing to fetch
html_theme_options = {
    "description": "Fast 2-D cross-correlation and convolution for CPUs",
    "fixed_sidebar": True,
    "page_width": "1200px",
    "sidebar_width": "230px",
}
html_title = f"fastcorr {release}"
html_static_path = []
html_show_sourcelink = False
