# Vigil. `make demo` and `make test` are all a newcomer needs; each runs scripts/setup first
# (idempotent: it installs only what is missing).
SWIFT ?= swift
export PKG_CONFIG_PATH := /usr/local/lib/pkgconfig:$(PKG_CONFIG_PATH)

.PHONY: setup build test demo broker bench clean

setup:
	@scripts/setup --quiet

build: setup
	$(SWIFT) build

test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

demo: build
	$$($(SWIFT) build --show-bin-path)/vigil demo

broker: build
	$$($(SWIFT) build --show-bin-path)/vigil broker

bench: setup
	scripts/bench

clean:
	rm -rf .build
