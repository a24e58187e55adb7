"""The active-learning simulation (benchmarks/active_learning.py), tiny: the phantom project, two
steps, one seed. It must read in queue order what the queue says, keep the random reader's choice
reproducible, share the first model between the two orders, and resume without training again."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")


@pytest.mark.slow
def test_a_tiny_simulation_runs_resumes_and_reads_in_queue_order(demo_project, tmp_path) -> None:  # noqa: ANN001
    from benchmarks.active_learning import STRATEGIES, Settings, simulate
    from lesion_studio.assist.queue import order_ids

    folder = demo_project.folder
    demo_project.close()  # the simulation opens the project itself
    settings = Settings(start=8, stop=16, step=8, seeds=[0], arch="drn_d_tiny", input_size=32,
                        crop_to_body=False, min_steps=2, batch_size=8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first = simulate(folder, tmp_path / "out", settings, cache_dir=tmp_path / "cache", png=True)
        again = simulate(folder, tmp_path / "out", settings, cache_dir=tmp_path / "cache")
    finally:
        torch.set_num_threads(threads)
    assert first["trained"] == 3  # one shared first model, one more per order
    assert again["trained"] == 0 and again["points"] == first["points"]  # resumed: nothing trained again

    points = json.loads((tmp_path / "out" / "active_learning.json").read_text())["points"]
    assert set(points) == {f"0/{s}/{n}" for s in STRATEGIES for n in (8, 16)}
    start_q, start_r = points["0/uncertainty/8"], points["0/random/8"]
    assert start_q["read_ids"] == start_r["read_ids"] and start_q["val_auc"] == start_r["val_auc"]
    assert 0 < start_q["lesions_read"] < 8
    for strategy in STRATEGIES:
        later = points[f"0/{strategy}/16"]
        assert len(later["read_ids"]) == 16 and set(start_q["read_ids"]) < set(later["read_ids"])
        assert 0.0 <= later["val_auc"] <= 1.0
    # the queue reader read exactly the eight unread images closest to the first model's operating point
    scores = {int(i): s for i, s in start_q["unread_scores"].items()}
    queue = order_ids(scores, scores, "uncertainty", start_q["operating_point"])
    added = set(points["0/uncertainty/16"]["read_ids"]) - set(start_q["read_ids"])
    assert added == set(queue[:8])
    assert set(points["0/random/16"]["read_ids"]) != set(points["0/uncertainty/16"]["read_ids"])

    table = (tmp_path / "out" / "active_learning.md").read_text()
    assert "| 8 |" in table and "| 16 |" in table and "± 0.000 (n=1)" in table
    assert (tmp_path / "out" / "active_learning.png").stat().st_size > 1000
    # changed settings start a new file and keep the old one
    simulate(folder, tmp_path / "out", Settings(**{**settings.__dict__, "stop": 8}), cache_dir=tmp_path / "cache")
    assert (tmp_path / "out" / f"active_learning-{settings.key()}.json").exists()
