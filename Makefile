# usualstore: build, install, test and demo the Terraform provider.
#
#   make build    release build of terraform-provider-usualstore
#   make install  put it into ~/.terraform.d/plugins so `source = "usualstore/usualstore"` inits offline
#   make release  registry-format release in dist/: zip per platform, SHA256SUMS (+ .sig with GPG_KEY_ID), manifest
#   make deps     PostgreSQL server, shellcheck, tmux, Chromium + chromedriver (apt-get); Terraform 1.0.3 (PyPI)
#   make lint     rustfmt check and clippy with warnings as errors
#   make docs     regenerate the `## Schema` sections of docs/ from the provider's schema
#   make test     deps, lint, then every test of the workspace (acceptance tests run real Terraform)
#   make demo     apply examples/quickstart against a throwaway PostgreSQL and open its storefront
#   make bench    provisioning, refresh, rollout, provider footprint and store-api load figures
#   make bench-fleet  examples/tenants/fleet.sh: plan and rollout over BENCH_FLEET_CUSTOMERS (50) workspaces
#
# CARGO_TARGET_DIR is honoured (CI points it at a persistent cache outside the clone).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

CARGO ?= cargo
TERRAFORM ?= terraform
# The acceptance tests wait on Terraform and PostgreSQL more than on the CPU: a couple more
# threads than the 2 cores keeps both busy without starving the servers.
TEST_THREADS ?= 3

VERSION := $(shell sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml)
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
PROVIDER := terraform-provider-usualstore
PLATFORM := linux_amd64
PLUGIN_DIR := $(HOME)/.terraform.d/plugins/registry.terraform.io/usualstore/usualstore/$(VERSION)/$(PLATFORM)
DIST_DIR ?= dist
# linux_arm64 joins the release where its Rust standard library and a cross linker are installed
# (rustup target add aarch64-unknown-linux-gnu; apt-get install gcc-aarch64-linux-gnu).
ARM64_TRIPLE := aarch64-unknown-linux-gnu
ARM64_CC ?= aarch64-linux-gnu-gcc

.PHONY: build install release deps lint test docs demo bench bench-fleet clean distclean

build:
	$(CARGO) build --release -p $(PROVIDER)

# Lock files pin the previous binary's hash and Terraform refuses a rebuilt one until they go.
install: build
	@test -n "$(VERSION)" || { echo "no version in Cargo.toml's [workspace.package]" >&2; exit 1; }
	mkdir -p "$(PLUGIN_DIR)"
	install -m 0755 "$(TARGET_DIR)/release/$(PROVIDER)" "$(PLUGIN_DIR)/$(PROVIDER)_v$(VERSION)"
	find examples -name .terraform.lock.hcl -type f -delete
	@echo "installed $(PLUGIN_DIR)/$(PROVIDER)_v$(VERSION)"

# A release build never has the test hooks: without the feature the variable's name is not even in
# the binary, which is what the grep checks.
release:
	@test -n "$(VERSION)" || { echo "no version in Cargo.toml's [workspace.package]" >&2; exit 1; }
	@grep -q '^## \[$(VERSION)\]' CHANGELOG.md || { echo "CHANGELOG.md has no '## [$(VERSION)]' section" >&2; exit 1; }
	scripts/ensure-release-tools.sh
	$(CARGO) build --release --locked -p $(PROVIDER)
	targets=("$(PLATFORM)=$(TARGET_DIR)/release/$(PROVIDER)"); \
	if test -d "$$(rustc --print target-libdir --target $(ARM64_TRIPLE))" && command -v $(ARM64_CC) >/dev/null; then \
	  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=$(ARM64_CC) CC_aarch64_unknown_linux_gnu=$(ARM64_CC) \
	    $(CARGO) build --release --locked -p $(PROVIDER) --target $(ARM64_TRIPLE); \
	  targets+=("linux_arm64=$(TARGET_DIR)/$(ARM64_TRIPLE)/release/$(PROVIDER)"); \
	else \
	  echo "release: no linux_arm64 (needs the Rust target $(ARM64_TRIPLE) and $(ARM64_CC); README, Installing)" >&2; \
	fi; \
	for target in "$${targets[@]}"; do \
	  if grep -q USUALSTORE_TEST_EXTRA_MIGRATIONS "$${target#*=}"; then \
	    echo "$${target#*=} was built with the test hooks; refusing to release it" >&2; exit 1; \
	  fi; \
	done; \
	scripts/package-release.sh "$(DIST_DIR)" "$(VERSION)" "$${targets[@]}"

deps:
	scripts/ensure-postgres.sh
	scripts/ensure-terraform.sh >/dev/null
	scripts/ensure-customer-tools.sh >/dev/null
	scripts/ensure-release-tools.sh
	scripts/ensure-browser.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# ensure-terraform.sh prints USUALSTORE_TF_1_11=… / USUALSTORE_TF_1_0=… for the test harness.
test: deps lint
	tf_env="$$(scripts/ensure-terraform.sh)"; eval "$$tf_env"; \
	export USUALSTORE_TF_1_11="$${USUALSTORE_TF_1_11:-}" USUALSTORE_TF_1_0="$${USUALSTORE_TF_1_0:-}"; \
	$(CARGO) test --workspace --features $(PROVIDER)/test-hooks -- --test-threads=$(TEST_THREADS)
	# Without the test hooks, as a release is built: the environment cannot add migrations.
	$(CARGO) test -p usualstore-schema --lib

# The acceptance test that checks the docs rewrites them when USUALSTORE_WRITE_DOCS is set.
docs:
	tf_env="$$(scripts/ensure-terraform.sh)"; eval "$$tf_env"; \
	export USUALSTORE_TF_1_11="$${USUALSTORE_TF_1_11:-}" USUALSTORE_TF_1_0="$${USUALSTORE_TF_1_0:-}"; \
	USUALSTORE_WRITE_DOCS=1 $(CARGO) test -p $(PROVIDER) --features test-hooks --test acceptance -- docs::

demo: install
	$(CARGO) build -p usualstore-testpg --bin testpg
	$(CARGO) build -p store-api --bin store-api
	TESTPG="$(TARGET_DIR)/debug/testpg" STORE_API="$(TARGET_DIR)/debug/store-api" TERRAFORM="$(TERRAFORM)" \
	  scripts/demo.sh

# Figures, not pass/fail: provisioning, refresh, rollout and provider footprint (bench/run.sh), then
# store-api against pgbench and store-api's router mode over BENCH_ROUTER_TENANTS (100) tenants
# (store-api/bench/run.sh). Each starts and removes its own PostgreSQL.
# The rollout figure stands in for a newer provider through the test hook, so the benchmark's
# release binary is built with it (`make build`/`make install` rebuild without).
bench: deps
	$(CARGO) build --release -p $(PROVIDER) --features test-hooks --bins --example startup_time
	$(CARGO) build -p usualstore-testpg --bin testpg
	PROVIDER_BIN="$(TARGET_DIR)/release/$(PROVIDER)" STARTUP_BIN="$(TARGET_DIR)/release/examples/startup_time" \
	  TESTPG="$(TARGET_DIR)/debug/testpg" TERRAFORM="$(TERRAFORM)" bench/run.sh
	CARGO="$(CARGO)" store-api/bench/run.sh

# fleet.sh over many customers, each in its own workspace (bench/fleet.sh; BENCH_FLEET_CUSTOMERS, default 50).
# Its rollout stands in for a newer provider through the test hook too.
bench-fleet:
	scripts/ensure-postgres.sh
	scripts/ensure-customer-tools.sh >/dev/null
	$(CARGO) build --release -p $(PROVIDER) --features test-hooks --bins
	$(CARGO) build -p usualstore-testpg --bin testpg
	PROVIDER_BIN="$(TARGET_DIR)/release/$(PROVIDER)" TESTPG="$(TARGET_DIR)/debug/testpg" TERRAFORM="$(TERRAFORM)" \
	  bench/fleet.sh

clean:
	$(CARGO) clean

# Also drops the downloaded Terraform 1.0.3.
distclean: clean
	rm -rf .cache
