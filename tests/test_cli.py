"""The command line: info and bench (functional checks, never timings)."""
import json
import os

import numpy as np
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


def test_regret_grid_on_chosen_cells(tmp_path, capsys):
    # --images/--kernels pick cells of the regret grid (g31: its Gaussian),
    # --json keeps the rows, so the grid can be run in parts and pooled
    out = tmp_path / "regret.json"
    assert main(["bench", "--regret", "--images", "16", "--kernels", "3", "g31", "--threads", "1",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "regret: median" in printed
    rows = json.loads(out.read_text())
    worst = max(rows, key=lambda r: r["regret"])  # the worst cells are named
    assert f"worst regret: {worst['image']}² k{worst['kernel']} {worst['dtype']} {worst['mode']}" in printed
    assert {(r["image"], r["kernel"]) for r in rows} == {(16, 3), (16, "g31")}
    assert len(rows) == 8  # two dtypes, two modes
    assert all(r["auto"] > 0 and r["pick"] in r["times"] and r["best"] in r["times"] for r in rows)
    with pytest.raises(SystemExit, match="--kernels"):
        main(["bench", "--kernels", "g31"])


@pytest.mark.skipif(os.environ.get("FASTCORR_SANITIZER") == "1",
                    reason="matplotlib's own C++ extension aborts under the ASan runtime")
def test_bench_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "plot.png"
    assert main(["bench", "--images", "16", "32", "--kernels", "3", "--threads", "1", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_layers_bench_table():
    # One (small) layer, one repeat: the table has both passes, and the
    # torch column when torch is installed.
    from fastcorr._cli import layers_bench as _layers_bench

    name = "N1 3->64 224x224 7x7 s2"
    results = _layers_bench.run(threads=1, repeats=1, layers=[name])
    entry = results["layers"][name]
    assert entry["gflop"] == pytest.approx(2 * 64 * 3 * 49 * 112 * 112 / 1e9)
    assert entry["forward"]["fastcorr"] > 0 and entry["backward"]["fastcorr"] > 0
    assert results["sgemm_gflops"] > 0
    text = _layers_bench.table(results)
    assert name in text and "backward" in text
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    assert entry["forward"]["torch"] > 0 and "fc/torch" in text


def test_im2col_efficiency_table():
    # The im2col-vs-GEMM table: positive times for the layer asked, and its
    # flop count from the same formula as the layer table.
    from fastcorr._cli import layers_bench as _layers_bench

    name = "N8 256->256 14x14 1x1"
    eff = _layers_bench.im2col_efficiency(threads=1, repeats=1, layers=[name])
    t_conv, t_gemm, gflop = eff[name]
    assert t_conv > 0 and t_gemm > 0
    assert gflop == pytest.approx(2 * 8 * 256 * 256 * 14 * 14 / 1e9)
    assert name in _layers_bench.im2col_table(eff)


def test_matching_bench_table():
    # One small case, one round: a time per installed library and the ratio table.
    from fastcorr._cli import matching_bench

    results = matching_bench.ratios(images=[(48, 64)], templates=[8], threads=1, rounds=1, stream=None)
    cell = results[(48, 64, 8)]
    assert cell["fastcorr"] > 0 and all(v > 0 for v in cell.values())
    text = matching_bench.ratio_table(results)
    assert "64x48" in text and "cv2 / fastcorr" in text
    acc = matching_bench.accuracy()
    assert acc[("fastcorr", "float64")] <= 1e-9 and acc[("fastcorr", "float32")] <= 1e-4


def test_ndimage_bench_table():
    # The reduced grid, one round: a time per contender and the ratio table.
    from fastcorr._cli import ndimage_bench

    results = ndimage_bench.ratios(threads=1, quick=True, rounds=1, stream=None)
    assert any(label.startswith("correlate 32³") for label in results)
    for cell in results.values():
        assert cell["fastcorr"] > 0 and all(v > 0 for v in cell.values())
    text = ndimage_bench.ratio_table(results)
    assert "scipy.ndimage" in text and "best of scipy" in text


def test_regret_cells_near_a_target_are_timed_again():
    # a cell past the regret bound or with a peer near 'auto' gets a second set
    # of rounds (its figures then the minima over both); a clear cell does not
    from fastcorr._cli import regret

    assert regret._doubtful({"auto": 1.2, "fft": 1.0, "direct": 2.0}, "fft", None)
    assert not regret._doubtful({"auto": 1.1, "fft": 1.0}, "fft", None)
    assert regret._doubtful({"auto": 1.0, "fft": 1.0, "cv2": 1.05}, "fft", "cv2")
    assert not regret._doubtful({"auto": 1.0, "fft": 1.0, "cv2": 2.0}, "fft", "cv2")
    times = {"auto": [3.0, 1.0], "fft": [2.0], "cv2": [4.0, 5.0]}
    med, best, peer = regret._minima(times, {"cv2": None}, ("fft",))
    assert (med, best, peer) == ({"auto": 1.0, "fft": 2.0, "cv2": 4.0}, "fft", "cv2")
    calls = []
    order = [("auto", lambda: calls.append("a")), ("fft", lambda: calls.append("f"))]
    times = {"auto": [], "fft": []}
    regret._rounds(order, times, 3, np.random.default_rng(0), {"fft"})
    assert len(times["auto"]) == len(times["fft"]) == 3 and calls.count("a") == calls.count("f") == 6
