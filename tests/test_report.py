"""The per-run report: figure functions on tiny runs (image size, non-constant pixels, deterministic arrays), the
traversal of a hand-built bar decoder, the nearest-image traversal without a decoder, one-line errors, the
training monitor and the leaderboard chart's error bars."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from disentbench import evaluation as ev  # noqa: E402
from disentbench.cli import main  # noqa: E402
from model_checks import Bands  # noqa: E402
from disentbench.viz import ReportError, build_report, load_run  # noqa: E402
from disentbench.viz import heatmaps, traversals  # noqa: E402
from disentbench.viz.figures import grid_size  # noqa: E402


def bands():
    """3 factors (4, 5, 6 classes); factor k sets the grey level of horizontal band k (class × 40 + 20)."""
    return Bands("bands", ("top", "middle", "bottom"), (4, 5, 6), step=40, offset=20)


LOG = [{"step": s, "epoch": 1 + s // 20, "loss": 10.0 / s, "recon": 8.0 / s, "images_per_s": 100.0}
       for s in range(5, 45, 5)] + [
    {"event": "eval", "step": 20, "epoch": 1, "test_mse": 0.2}, {"event": "eval", "step": 40, "epoch": 2, "test_mse": 0.1},
    {"event": "metrics", "step": 20, "epoch": 1, "mig.score": 0.1}, {"event": "metrics", "step": 40, "epoch": 2,
                                                                      "mig.score": 0.3}]


def make_run(path, model_name: str, latent_dim: int = 3):
    """A run folder with a seeded untrained model, a training log and its score record on :func:`bands`."""
    from disentbench.checkpoint import save_model
    from disentbench.models import build_model
    from disentbench.models.base import ModelContext
    from disentbench.training import resolve_spec

    config = {**resolve_spec(model_name, tier="smoke", seed=0, dataset="bands")["config"], "latent_dim": latent_dim}
    torch.manual_seed(0)
    path.mkdir()
    save_model(path / "model.pt", build_model(model_name, config, ModelContext(channels=1)))
    (path / "log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in LOG))
    record = ev.evaluate(path, "bands", dataset=bands(), metrics="mig,spearman", n_points=None, progress=False)
    ev.write_record(record, path / "record.json")
    return path


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISENTBENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def pixels():
    import matplotlib.image

    return matplotlib.image.imread


def check_png(read, path, size):
    assert path.stat().st_size > 0
    image = read(str(path))
    assert image.shape[:2] == tuple(size)
    assert image[..., :3].std() > 0.01  # not constant


def test_every_figure_of_a_vae_run_is_a_nonconstant_png_of_its_size_and_deterministic(tmp_path, pixels):
    run = load_run(make_run(tmp_path / "vae", "vae"), dataset=bands())
    assert run.own_decoder and run.codes.shape == (120, 3)
    first = build_report(run, tmp_path / "a", seed=0, methods=["pca", "tsne"])
    figures = {f["name"]: f for f in first["figures"]}
    assert set(figures) == {"traversal_decoded_fixed", "traversal_decoded_quantile", "reconstructions",
                            "embeddings", "heatmaps", "curves"}
    for f in figures.values():
        check_png(pixels, tmp_path / "a" / f["file"], (f["height"], f["width"]))
    assert (figures["traversal_decoded_fixed"]["height"], figures["traversal_decoded_fixed"]["width"]) == grid_size(3, 21)
    assert (figures["reconstructions"]["height"], figures["reconstructions"]["width"]) == grid_size(2, 12)
    page = (tmp_path / "a" / "index.html").read_text()
    assert all(f["file"] in page for f in figures.values()) and "dci (not evaluated)" in page
    again = build_report(load_run(tmp_path / "vae", dataset=bands()), tmp_path / "b", seed=0, methods=["pca", "tsne"])
    assert [f["arrays_sha256"] for f in again["figures"]] == [f["arrays_sha256"] for f in first["figures"]]
    other = build_report(run, tmp_path / "c", seed=1, methods=["pca"])
    assert {f["name"]: f["arrays_sha256"] for f in other["figures"]}["reconstructions"] != \
        figures["reconstructions"]["arrays_sha256"]


def bar_decoder(codes):
    """Code j -> a vertical bar in column band j (8 px wide) whose height position is z_j (in [-1, 1])."""
    codes = np.asarray(codes)
    out = np.zeros((len(codes), 1, 64, 64), np.float32)
    for i, z in enumerate(codes):
        for j, v in enumerate(z):
            top = int(np.clip(round((v + 1) / 2 * 48), 0, 48))
            out[i, 0, top:top + 16, 8 * j:8 * j + 8] = 1.0
    return out


def test_traversal_of_a_bar_decoder_moves_bar_j_in_row_j_only():
    d = 5
    base = np.zeros(d, np.float32)
    trav = traversals.decoded_traversal(bar_decoder, base, traversals.span_values(np.zeros((10, d)), "fixed"), "fixed")
    assert trav.images.shape == (d, 21, 1, 64, 64)
    for row in range(d):
        for j in range(d):
            strip = trav.images[row, :, 0, :, 8 * j:8 * j + 8]
            moved = not np.all(strip == strip[0])
            assert moved == (j == row), (row, j)
        # the bar goes from the top (z = -1) to the bottom (z = 1)
        assert trav.images[row, 0, 0, 0, 8 * row] == 1 and trav.images[row, -1, 0, 63, 8 * row] == 1


def test_a_run_without_decoder_gets_nearest_image_traversals(tmp_path, pixels):
    run = load_run(make_run(tmp_path / "random", "random", latent_dim=4), dataset=bands())
    assert run.decode is None
    summary = build_report(run, tmp_path / "out", seed=0, methods=["pca"])
    names = [f["name"] for f in summary["figures"]]
    assert "traversal_nearest_fixed" in names and "traversal_nearest_quantile" in names
    assert "reconstructions" not in names
    f = summary["figures"][names.index("traversal_nearest_quantile")]
    check_png(pixels, tmp_path / "out" / f["file"], grid_size(4, 21))
    assert "number of distinct classes per factor" in (tmp_path / "out" / "index.html").read_text()


def test_nearest_positions_follow_the_target_code():
    codes = np.stack(np.meshgrid(np.linspace(-1, 1, 11), np.linspace(-1, 1, 11)), -1).reshape(-1, 2)
    values = np.tile(np.linspace(-1, 1, 11), (2, 1))
    pos = traversals.nearest_positions(codes, np.zeros(2), values)
    np.testing.assert_allclose(codes[pos[0], 0], values[0])
    np.testing.assert_allclose(codes[pos[0], 1], 0, atol=1e-12)
    classes = np.round((codes + 1) * 5).astype(int)
    assert traversals.factors_moved(classes, pos).tolist() == [[11, 1], [1, 11]]


def test_heatmaps_read_the_records_matrices_including_dci_on_a_factor_subset():
    record = {"metric_details": {
        "mig": {"matrices": {"mutual_info": [[0.5, 0.0], [0.1, 0.2]], "factor_entropy": [1.0, 0.0]}},
        "dci": {"matrices": {"importance": [[0.9], [0.1]], "factor_index": [1]}}}}
    maps, missing = heatmaps.record_heatmaps(record, 2)
    mi, dci = maps
    np.testing.assert_allclose(mi.values[:, 0], [0.5, 0.1])
    assert np.isnan(mi.values[:, 1]).all()  # a factor of zero entropy has no normalised MI
    assert np.isnan(dci.values[:, 0]).all() and dci.values[0, 1] == 0.9
    assert missing == ["spearman (not evaluated)"]
    assert heatmaps.matched_factors(dci, ["a", "b"]) == ["b (0.90)", "b (0.10)"]


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "run folder not found" in err and len(err.strip().splitlines()) == 1
    run = make_run(tmp_path / "r", "random")
    (run / "record.json").unlink()
    with pytest.raises(ReportError, match="no score record"):
        load_run(run, dataset=bands())
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert "no score record" in err and len(err.strip().splitlines()) == 1


def test_monitor_logs_mig_and_fast_dci_without_touching_the_global_rng():
    from disentbench.models import build_model
    from disentbench.models.base import ModelContext
    from disentbench.training.monitor import MetricMonitor

    torch.manual_seed(0)
    model = build_model("random", {"init": "default", "latent_dim": 4, "activation": "relu"}, ModelContext(channels=1))
    monitor = MetricMonitor(bands(), seed=0, device="cpu")
    state = torch.get_rng_state()
    scores = monitor(model)
    assert torch.equal(state, torch.get_rng_state()) and model.training
    assert {"mig.score", "dci.disentanglement", "dci.informativeness_test"} <= set(scores)
    assert scores == monitor(model)


def test_leaderboard_figure_has_std_and_student_t_error_bars(tmp_path, pixels):
    from disentbench.leaderboard.render import Aggregate, chart_metrics, error_bars, render_chart

    three = Aggregate("d", "1", "fast", "multi-head", [0, 1, 2], {"mig.score": 0.4, "multitask.rmse": 9.0},
                      {"mig.score": 0.2, "multitask.rmse": 1.0}, {"mig.score": 3, "multitask.rmse": 3})
    one = Aggregate("d", "1", "fast", "random", [0], {"mig.score": 0.0}, {"mig.score": 0.0}, {"mig.score": 1})
    std, half = error_bars(three, "mig.score")
    assert std == 0.2 and half == pytest.approx(4.302653 * 0.2 / 3 ** 0.5, rel=1e-6)
    assert error_bars(one, "mig.score") == (0.0, 0.0)
    assert chart_metrics([three, one]) == ["mig.score", "multitask.rmse"]  # every headline metric, lower-is-better too
    render_chart([three, one], tmp_path / "chart.png", "d")
    image = pixels(str(tmp_path / "chart.png"))
    assert image.shape[1] > image.shape[0] and image[..., :3].std() > 0.01
