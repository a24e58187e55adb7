# Two commands on a fresh machine:  `make run` (the app on the demo project) and `make test`
# (everything; CI runs it too). `make test-fast` leaves out the slow end-to-end tests.
# Packaging:  `make bundle` (PyInstaller desktop bundle, no torch) and `make deb` (Debian package).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The bundle is built from its own torch-free venv, so nothing of the training stack leaks in.
BUNDLE_VENV ?= build/bundle-venv
BUNDLE      := dist/lesion-studio

.PHONY: run test test-fast lint bench bundle deb package-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/lesion-studio demo

# One pytest worker per core, at most 4 (each worker holds its own torch and Qt); a test file stays
# on one worker, so its module fixtures (a trained GAN, a project) are built once. A worker that
# dies (a native crash) ends the run at once, naming its test: with --dist loadfile, xdist's
# replacement worker can wait forever (pytest-xdist issue 784; seen here on 2026-12-07).
PYTEST_WORKERS ?= -n auto --maxprocesses 4 --dist loadfile --max-worker-restart 0

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_WORKERS)

# The quick loop while editing: every test but those marked `slow` (training, exports, whole
# protocols, torchrun, the wheel in a fresh venv).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_WORKERS) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check lesion_studio tests benchmarks tools

BENCH_ARGS ?= --quick   # `make bench BENCH_ARGS=` for the full settings
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

bundle:
	test -x $(BUNDLE_VENV)/bin/python || $(PYTHON) -m venv $(BUNDLE_VENV)
	$(BUNDLE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BUNDLE_VENV)/bin/python -m pip install --quiet . pyinstaller
	@$(BUNDLE_VENV)/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)" \
		|| { echo "$(BUNDLE_VENV) has torch: the reading bundle must be built without it"; exit 1; }
	rm -rf build/lib build/bdist.* *.egg-info
	$(BUNDLE_VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN --distpath dist \
		--workpath build/pyinstaller packaging/lesion-studio.spec
	QT_QPA_PLATFORM=offscreen $(BUNDLE)/lesion-studio --selftest | tee build/selftest.log
	grep -q "^self-test passed" build/selftest.log

$(BUNDLE)/lesion-studio:
	$(MAKE) bundle

deb: $(BUNDLE)/lesion-studio
	test -x $(BUNDLE_VENV)/bin/python || $(MAKE) bundle
	$(BUNDLE_VENV)/bin/python packaging/build_deb.py --bundle $(BUNDLE) --out dist

# Size, start-up, self-test and the desktop/AppStream validators (JSON).
package-check: $(BUNDLE)/lesion-studio
	$(PYTHON) -m benchmarks.package_bench

clean:
	rm -rf $(VENV) build dist *.egg-info
