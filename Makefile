# studyshare - the two commands are `make run` and `make test`.
#
#   make run     install what is missing (Debian 12, as root), build, and
#                start the local stack in the foreground (Ctrl-C stops it)
#   make test    install, build normal + ASan/UBSan + fuzz builds, run every
#                test; the last line is "N passed, N failed, N skipped"
#   make build   the normal build only (build/)
#   make bench   benchmarks, printed as ratios to this machine's floors
#   make format  clang-format every C source in place

BUILD ?= build
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build test test-quick run bench format clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: deps
	@python3 tests/run.py

test-quick: deps
	@python3 tests/run.py --quick

run: build
	@deploy/local/stack run

bench: build
	@bash bench/run.sh
	@bash bench/notify_bench.sh
	@bash bench/share_bench.sh
	@bash bench/share_list_bench.sh
	@bash bench/http_bench.sh

format:
	@clang-format -i proto/*.[ch] runtime/*.[ch] services/*/*.[ch] \
		tools/*.[ch] tests/unit/*.[ch] tests/fuzz/*.c bench/*.c

clean:
	rm -rf build build-asan build-fuzz
