# flowgres entry points. A newcomer needs two: `make run` and `make test`.
#   deps     install missing Debian packages (apt-get update first when installing)
#   build    core/ and unit tests (CMake, ./build) and the extension (PGXS)
#   install  install the extension into PostgreSQL 15 (sudo when not root)
#   run      an embedded cluster under ./var/ (or FLOWGRES_DATABASE_URL), demo data, flowgresd
#            on 127.0.0.1:8080, and the admin key
#   stop     stop flowgresd and the embedded cluster
#   bench    flowgresd side by side with nginx, pgbench, Node-RED and n8n (bench/*.sh)
#   test     every suite against a throwaway cluster; ends with "N passed, N failed"
SHELL := /bin/bash
JOBS  ?= $(shell nproc)

.PHONY: deps build install run stop test bench clean

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS)
	@$(MAKE) -s -C extension -j $(JOBS)

install: build
	@scripts/install-extension.sh

run: install
	@scripts/run.sh

stop:
	@if [ -s var/flowgresd.pid ] && kill -0 "$$(cat var/flowgresd.pid)" 2>/dev/null; then kill -TERM "$$(cat var/flowgresd.pid)"; fi
	@rm -f var/flowgresd.pid
	@if [ -s var/llm_provider.pid ] && kill -0 "$$(cat var/llm_provider.pid)" 2>/dev/null; then kill -TERM "$$(cat var/llm_provider.pid)"; fi
	@rm -f var/llm_provider.pid
	@scripts/cluster.sh down var/pool
	@scripts/cluster.sh down var

test: install
	@scripts/test.sh

bench: install
	@bench/run.sh
	@bench/workflow.sh
	@bench/runtime.sh
	@bench/llm.sh
	@bench/gateway.sh
	@bench/tls.sh
	@bench/databases.sh

clean:
	rm -rf build
	$(MAKE) -s -C extension clean
