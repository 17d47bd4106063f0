# Lambda packages. `sam build` (BuildMethod: makefile) runs build-<Function> with ARTIFACTS_DIR
# set; run it in the runtime's image (`sam build --use-container`) so that the bytecode it
# compiles is the runtime's. /var/task is read-only: a package without bytecode recompiles
# every module on every cold start.
PYTHON ?= python3
RUNTIME_PYTHON ?= 3.12
# The functions' architecture (the template's Architecture): x86_64 or arm64. In `sam build
# --use-container` the build image is the architecture's own, and uname says which; building
# for the other one without it, say so: LAMBDA_ARCH=arm64 sam build.
LAMBDA_ARCH ?= $(shell uname -m)
ARCH := $(if $(filter arm64 aarch64,$(LAMBDA_ARCH)),aarch64,x86_64)
# Amazon Linux 2023 (glibc 2.34) runs wheels up to manylinux_2_34.
PLATFORMS ?= manylinux_2_28_$(ARCH) manylinux2014_$(ARCH)
ARTIFACTS_DIR ?= build/lambda
PIP_INSTALL = $(PYTHON) -m pip install --quiet --no-compile --target "$(ARTIFACTS_DIR)" \
	--require-hashes --only-binary=:all: --implementation cp \
	$(addprefix --platform ,$(PLATFORMS)) --python-version $(RUNTIME_PYTHON) -r lambda/requirements.txt

.PHONY: build-ApiFunction build-AuthorizerFunction lambda-package lambda-resolve

build-ApiFunction build-AuthorizerFunction: lambda-package

# pydantic.v1 is left out: FastAPI imports it, a fifth of the first request's time on a cold
# start, only to refuse its models, and nimbus has none (the tests run without it).
lambda-package:
	@$(PYTHON) -c 'import sys; v = "%d.%d" % sys.version_info[:2]; \
	sys.exit(None if v == "$(RUNTIME_PYTHON)" else \
	f"The runtime is Python $(RUNTIME_PYTHON), this is {v}: sam build --use-container")'
	$(PIP_INSTALL)
	rm -rf "$(ARTIFACTS_DIR)/pydantic/v1"
	$(PYTHON) -m pip install --quiet --no-compile --no-deps --target "$(ARTIFACTS_DIR)" .
	$(PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(ARTIFACTS_DIR)"

# Whether the package installs from wheels for LAMBDA_ARCH: the install above, without
# installing (pip fetches the wheels into its cache to check their hashes). scripts/check runs
# it for both architectures.
lambda-resolve:
	$(PIP_INSTALL) --dry-run --quiet

# Made from uv.lock by scripts/lambda-requirements; scripts/check fails when it is stale.
lambda/requirements.txt: uv.lock
	scripts/lambda-requirements
