# Tugboat: the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
VENV = $(shell bash .ci/pyenv.sh)
PY = $(VENV)/bin/python

.PHONY: tools venv demo demo-down test test-unit test-integration lint crds bench bench-scale chaos

tools:            ## build etcd, kube-*, kubectl, kwok, kwokctl, helm into ~/.cache/tugboat (once)
	bash hack/build-tools.sh

venv:             ## create the Python environment outside the clone (once per dependency spec)
	@echo $(VENV)

demo: tools       ## local cluster + operator + the example lineage, end to end
	bash hack/demo.sh

demo-down:        ## stop the demo's operator and cluster
	bash hack/demo.sh down

test: tools       ## the whole test suite (what CI runs)
	bash hack/test.sh

chaos: tools      ## the operator under faults (kills, HA failover, API server/etcd down, 410, 409)
	bash hack/chaos.sh

test-unit:
	$(PY) -m pytest tests/unit tests/contract -q

lint:
	$(VENV)/bin/ruff check operator workloads tests
	cd $(CURDIR) && $(VENV)/bin/lint-imports

crds:             ## regenerate crds/ from the API models
	$(VENV)/bin/tugboat crds --write crds --write charts/tugboat/crds
	$(VENV)/bin/tugboat chart-policies --write

bench: tools      ## benchmarks (ratios against baselines measured in the same run)
	bash hack/bench.sh

bench-scale: tools  ## scale benchmark at N=100,1000,5000 (long; ARGS=--quick for a small run)
	bash hack/bench-scale.sh $(ARGS)
