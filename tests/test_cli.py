"""The command line: info and bench (functional checks, never timings)."""
import json

import pytest

from fastcorr.__main__ import main


def test_bench_writes_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--images", "32", "--kernels", "3", "5", "--threads", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fastcorr auto" in printed and "best peer / auto" in printed
    results = json.loads(out.read_text())
    names = {r["name"] for r in results}
    assert {"fastcorr auto", "fastcorr direct", "scipy.signal.correlate2d"} <= names
    assert {r["kernel"] for r in results} == {3, 5}
    timed = [r for r in results if r["name"] == "fastcorr auto"]
    assert all(r["time"] > 0 for r in timed)


def test_bench_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "plot.png"
    assert main(["bench", "--images", "16", "32", "--kernels", "3", "--threads", "1", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
