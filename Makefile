# Entry points. `make demo` and `make test` install what is missing, build and run.
BUILD_DIR ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: deps configure build demo test test-all bench bench-nexmark asan tsan clean

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	@$(BUILD_DIR)/examples/wordcount --input data/wordcount.txt --parallelism 2

# Default test suite: everything not labelled slow.
test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -LE slow --timeout 600

# Everything, slow suites included.
test-all: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 1800

bench: build
	@$(BUILD_DIR)/bench/freshet_runtime_bench
	@$(BUILD_DIR)/bench/freshet_window_bench

# Every Nexmark query on the heap and RocksDB backends (exactly-once
# checkpoints every 10 s), one process per query and backend so that peak
# memory is the query's own; then the table and chart of docs/benchmarks.md.
NEXMARK_EVENTS ?= 20000000
NEXMARK_ROCKSDB_EVENTS ?= 3000000
NEXMARK_RUNS ?= 3
NEXMARK_QUERIES ?= q0 q1 q2 q3 q4 q5 q6 q7 q8 q9 q10 q11 q12 q13 q14 q15 q16 q17 q18 q19 q20 q21 q22
bench-nexmark: build
	@rm -f $(BUILD_DIR)/nexmark.csv
	@for q in $(NEXMARK_QUERIES); do \
	  $(BUILD_DIR)/bench/freshet_nexmark_bench --query $$q --events $(NEXMARK_EVENTS) --runs $(NEXMARK_RUNS) --csv $(BUILD_DIR)/nexmark.csv || exit 1; \
	  $(BUILD_DIR)/bench/freshet_nexmark_bench --query $$q --events $(NEXMARK_ROCKSDB_EVENTS) --runs $(NEXMARK_RUNS) --backend rocksdb --incremental --csv $(BUILD_DIR)/nexmark.csv || exit 1; \
	done
	@scripts/nexmark_report.py $(BUILD_DIR)/nexmark.csv --svg docs/nexmark.svg

# Runtime tests under ASan+UBSan and under TSan, each in its own build tree.
# TSan leaves out the process suites (labels deploy, ui): Debian's gRPC is not
# instrumented, so TSan cannot see its synchronisation.
asan: deps
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFRESHET_SANITIZE=address -DFRESHET_BUILD_BENCH=OFF > /dev/null
	@cmake --build build-asan -j $(JOBS)
	@cd build-asan && ctest --output-on-failure -j $(JOBS) -LE slow --timeout 1200

tsan: deps
	@cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFRESHET_SANITIZE=thread -DFRESHET_BUILD_BENCH=OFF > /dev/null
	@cmake --build build-tsan -j $(JOBS)
	@cd build-tsan && TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp" ctest --output-on-failure -j $(JOBS) -LE "slow|deploy|ui" --timeout 1200

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan
