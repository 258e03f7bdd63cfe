# `make demo` and `make test` are all a newcomer needs; both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0

# The benchmark data lives beside the repository, never inside it.
ifneq ($(wildcard ../shared/datasets),)
NLU_DATA_DIR ?= $(abspath ../shared/datasets)
endif
export NLU_DATA_DIR

DEMO_TEXT ?= book a flight from Boston to London tomorrow morning

.PHONY: demo test lint install clean

install: $(STAMP)

# torch first and pinned: a looser requirement would pull the CUDA build and gigabytes of packages.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nlu train configs/atis_bilstm_crf.yaml
	$(BIN)/nlu evaluate --model runs/latest --data atis --split test
	$(BIN)/nlu tag --model runs/latest "$(DEMO_TEXT)"

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check nlu cli tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache
