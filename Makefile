# mnc_mm: the two commands of the README, and what they need.
#
#   make demo      install what is missing, then run the main job
#   make test      install what is missing, then run the whole test suite
#
# Everything goes into .venv unless PYTHON=/path/to/python names another
# interpreter. `make install` is idempotent: stamps under .make/ record what
# was installed, so a second call returns at once; editing requirements/,
# setup.py or the C++/CUDA sources redoes only the affected steps.

VENV ?= .venv
ifeq ($(origin PYTHON), undefined)
PY := $(VENV)/bin/python
PY_DEP := $(PY)
else
PY := $(PYTHON)
PY_DEP :=
endif
# One stamp directory per interpreter.
STAMPS := .make/$(subst /,_,$(PY))
# Every pip call is constrained to the one torch: nothing may pull another.
PIP := PIP_CONSTRAINT=requirements/torch.txt $(PY) -m pip
MAX_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
MODEL ?= fcis
PYTEST_ARGS ?=
EXT_SOURCES := setup.py $(shell find mnc_mm/ops/csrc -type f 2>/dev/null)

.PHONY: install demo test clean-install

install: $(STAMPS)/ext

demo: install
	$(PY) tools/misc/run_demo.py --model $(MODEL)

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

$(VENV)/bin/python:
	python3 -m venv $(VENV)

# build tools, then torch, then numpy: mmcv compiles against them.
$(STAMPS)/base: requirements/build.txt requirements/torch.txt $(PY_DEP)
	@mkdir -p $(STAMPS)
	$(PIP) install -q -r requirements/build.txt -r requirements/torch.txt
	@touch $@

# mmcv 2.1.0 with its compiled ops: no wheel exists for torch 2.13, so pip
# builds it from source (about 7 minutes on 2 cores) and caches the wheel.
$(STAMPS)/mmcv: $(STAMPS)/base requirements/mmcv.txt
	MAX_JOBS=$(MAX_JOBS) $(PIP) install -q --no-build-isolation -r requirements/mmcv.txt
	$(PY) -c "import mmcv.ops; from mmcv.utils import ext_loader; assert ext_loader.check_ops_exist(), 'mmcv was installed without its compiled ops (mmcv._ext)'"
	@touch $@

$(STAMPS)/deps: $(STAMPS)/mmcv requirements/mminstall.txt requirements/runtime.txt requirements/tests.txt
	$(PIP) install -q -r requirements/build.txt -r requirements/mminstall.txt -r requirements/runtime.txt -r requirements/tests.txt
	@touch $@

$(STAMPS)/ext: $(STAMPS)/deps $(EXT_SOURCES)
	MAX_JOBS=$(MAX_JOBS) $(PIP) install -q --no-build-isolation --no-deps -e .
	$(PY) -c "import torch, mnc_mm, mnc_mm.ops as ops; ops.load_ext(); v = torch.__version__; assert v.startswith('2.13.0'), 'expected torch 2.13.0, found ' + v; print('mnc_mm', mnc_mm.__version__, 'with torch', v)"
	@touch $@

clean-install:
	rm -rf .make build mnc_mm/_ext*.so mnc_mm.egg-info
