"""`tugboat report`: one self-contained HTML file (plots inline, nothing fetched when opened) about
a TrainingRun or a ModelRelease. `gather` reads the cluster, MLflow and Prometheus into the plain
values of `model`; `render` turns those into figures and HTML without any I/O."""
