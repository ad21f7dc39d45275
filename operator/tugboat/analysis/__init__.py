"""Canary analysis against Prometheus: built-in PromQL (queries, pure), what an answer means
(results, pure) and the HTTP client (prometheus, I/O, used on the controllers' side only)."""
