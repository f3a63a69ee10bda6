# Vigil. `make demo` and `make test` are all a newcomer needs; each runs scripts/setup first
# (idempotent: it installs only what is missing).
SWIFT ?= swift
export PKG_CONFIG_PATH := /usr/local/lib/pkgconfig:$(PKG_CONFIG_PATH)

.PHONY: setup build test demo broker bench clean

setup:
	@scripts/setup --quiet

build: setup
	$(SWIFT) build

# The scale-out and fault-scenario tests each run a broker and several stage processes for
# minutes; on a 2-core machine they run one at a time, after everything else has run in parallel.
HEAVY_TESTS := HarnessScenarioTests|DetectScaleOutTests|EnrichScaleOutTests

test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip '$(HEAVY_TESTS)'
	$(SWIFT) test --skip-build --no-parallel --filter '$(HEAVY_TESTS)'

demo: build
	$$($(SWIFT) build --show-bin-path)/vigil demo

broker: build
	$$($(SWIFT) build --show-bin-path)/vigil broker

bench: setup
	scripts/bench

clean:
	rm -rf .build
