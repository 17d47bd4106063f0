# Lambda packages. `sam build` (BuildMethod: makefile) runs build-<Function> with ARTIFACTS_DIR
# set; run it in the runtime's image (`sam build --use-container`) so that the bytecode it
# compiles is the runtime's. /var/task is read-only: a package without bytecode recompiles
# every module on every cold start.
PYTHON ?= python3
RUNTIME_PYTHON ?= 3.12
# Amazon Linux 2023 (glibc 2.34) runs wheels up to manylinux_2_34.
PLATFORMS ?= manylinux_2_28_x86_64 manylinux2014_x86_64
ARTIFACTS_DIR ?= build/lambda

.PHONY: build-ApiFunction build-AuthorizerFunction lambda-package

build-ApiFunction build-AuthorizerFunction: lambda-package

lambda-package:
	@$(PYTHON) -c 'import sys; v = "%d.%d" % sys.version_info[:2]; \
	sys.exit(None if v == "$(RUNTIME_PYTHON)" else \
	f"The runtime is Python $(RUNTIME_PYTHON), this is {v}: sam build --use-container")'
	$(PYTHON) -m pip install --quiet --no-compile --target "$(ARTIFACTS_DIR)" \
		--require-hashes --only-binary=:all: --implementation cp \
		$(addprefix --platform ,$(PLATFORMS)) --python-version $(RUNTIME_PYTHON) -r lambda/requirements.txt
	$(PYTHON) -m pip install --quiet --no-compile --no-deps --target "$(ARTIFACTS_DIR)" .
	$(PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(ARTIFACTS_DIR)"

# Made from uv.lock by scripts/lambda-requirements; scripts/check fails when it is stale.
lambda/requirements.txt: uv.lock
	scripts/lambda-requirements
