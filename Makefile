# Vigil. `make demo` and `make test` are all a newcomer needs; each runs scripts/setup first
# (idempotent: it installs only what is missing).
SWIFT ?= swift
export PKG_CONFIG_PATH := /usr/local/lib/pkgconfig:$(PKG_CONFIG_PATH)

.PHONY: setup build test demo broker bench clean

setup:
	@scripts/setup --quiet

build: setup
	$(SWIFT) build

# The end-to-end tests run brokers and stage processes and wait on them (several block a thread
# of Swift's cooperative pool while a child process runs); on a 2-core machine they run one at a
# time, after the rest has run in parallel, so they cannot starve the other suites.
test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip '^EndToEndTests\.'
	$(SWIFT) test --skip-build --no-parallel --filter '^EndToEndTests\.'

demo: build
	$$($(SWIFT) build --show-bin-path)/vigil demo

broker: build
	$$($(SWIFT) build --show-bin-path)/vigil broker

bench: setup
	scripts/bench

clean:
	rm -rf .build
