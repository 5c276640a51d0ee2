"""The command-line tools: ``python -m fastcorr {info,demo,calibrate,bench}``.

The top layer: these modules use the public API and, for ``calibrate`` and
the dispatch-regret report, the engine; nothing imports them.
"""
