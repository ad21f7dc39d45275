"""The router-health figure: a heatmap of per-expert load over steps, curves against the SLOs."""


from tugboat_workloads.train.router_plot import load_matrix, render_router_health


def test_matrix_keeps_the_steps_every_expert_reported():
    steps, matrix = load_matrix([{1: 0.5, 2: 0.4, 3: 0.6}, {1: 0.5, 3: 0.4}])
    assert steps == [1, 3]
    assert matrix == [[0.5, 0.6], [0.5, 0.4]]
    assert load_matrix([]) == ([], [])


def test_renders_a_png(tmp_path):
    loads = [{s: (0.1 + 0.01 * e) for s in range(1, 41)} for e in range(8)]
    curve = {s: 3.0 / s for s in range(1, 41)}
    path = render_router_health(tmp_path / "r.png", loads, curve, {s: 1.3 for s in curve},
                                {s: 1.5 for s in curve}, 1.6, 1.1, "ml/moe attempt 1")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (900, 800)
