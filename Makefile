# DL Notes: every command sets itself up (a venv in .venv) on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export NO_MKDOCS_2_WARNING := 1

.PHONY: install serve edit build test bench mutants clean

install: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

serve: install  ## build (running changed demos) and serve with live reload at :8000
	$(BIN)/mkdocs serve --strict --livereload -a 127.0.0.1:8000

edit: install  ## for writing notes: rebuild only the changed page on save (not strict)
	$(BIN)/mkdocs serve --dirty --no-strict --livereload -a 127.0.0.1:8000

build: install  ## the static site into site/
	$(BIN)/mkdocs build --strict

test: install  ## module tests, page code blocks, site and browser checks, then the real site
	DLNOTES_PRESET=tiny $(BIN)/python -m pytest tests
	$(BIN)/python -m pytest --codeblocks docs
	@echo "strict build at the real preset: every demo runs, every cited claim must hold"
	DLNOTES_PRESET=real $(BIN)/mkdocs build --strict

bench: install  ## cold / warm / one-touch builds and each demo's time and metrics
	$(BIN)/python scripts/bench.py

mutants: install  ## mutation testing of the from-scratch code: [PART=cnn] [MODULE=convolution] [FUNCTION=conv2d] [JOBS=2]
	$(BIN)/python scripts/mutants.py $(if $(PART),--part $(PART)) \
		$(if $(MODULE),--module $(MODULE)) $(if $(FUNCTION),--function $(FUNCTION)) \
		$(if $(JOBS),--jobs $(JOBS))

clean:
	rm -rf site .cache out build .mutants
