# Rampart's entry points. `make run` and `make test` set up what is missing, build, and go.
# Build folders: build/ (release, used by run and test), build-debug/, build-asan/, build-tsan/, build-tsan-units/,
# build-fuzz/ (clang with ASan+UBSan: the fuzzers and make sanitize-units).
SHELL := /bin/bash
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 10
# The suites `make sanitize-units` runs under ASan+UBSan in the clang build the fuzzers use (build-fuzz): every
# room that reads untrusted bytes or holds pure logic, without the CAF stages and the model fixtures (`make
# sanitize` runs everything, with gcc, in build-asan). Tests that run the rampartd binary are left to those.
SANITIZE_UNITS := base_tests tokenizer_tests config_tests policy_tests monitor_tests accounts_tests shedder_tests \
                  net_tests frontend_tests http_door_tests dashboard_tests zap_tests shards_unit_tests engine_sampler_tests \
                  kernels_tests
# The suites `make tsan-units` runs under ThreadSanitizer (clang, build-tsan-units/), suppressing only libzmq's own
# hand-offs (tests/sanitizers/tsan-units.supp):
# every room with threads of its own that does not run CAF stages (the front end's I/O thread, the ZAP handler, the
# alert publisher, the dashboard's event streams, the capture thread and its watchdog, the shard link, the kernels' thread
# pool).
TSAN_UNITS := base_tests config_tests monitor_tests monitor_live_tests net_tests frontend_tests http_door_tests dashboard_tests \
              zap_tests \
              shards_unit_tests kernels_tests
SETUP_STAMP := build/.setup-done

.PHONY: all setup build run test debug sanitize sanitize-units tsan tsan-units fuzz format clean attack-demo

all: build

$(SETUP_STAMP): tools/setup.sh
	tools/setup.sh
	@mkdir -p build && touch $@

setup:
	tools/setup.sh
	@mkdir -p build && touch $(SETUP_STAMP)

build/build.ninja: | $(SETUP_STAMP)
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: $(SETUP_STAMP) build/build.ninja
	cmake --build build -j $(JOBS)

run: build
	tools/run-demo.sh build/bin

test: build
	cd build && ctest --output-on-failure -j $(JOBS)
	$(MAKE) fuzz
	$(MAKE) sanitize-units
	$(MAKE) tsan-units

debug: $(SETUP_STAMP)
	cmake -S . -B build-debug -G Ninja -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build build-debug -j $(JOBS)
	cd build-debug && ctest --output-on-failure -j $(JOBS)

sanitize: $(SETUP_STAMP)
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAMPART_SANITIZE=address -DRAMPART_CUDA=OFF $(CMAKE_FLAGS)
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

tsan: $(SETUP_STAMP)
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAMPART_SANITIZE=thread -DRAMPART_CUDA=OFF $(CMAKE_FLAGS)
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/sanitizers/tsan.supp" ctest --output-on-failure -j $(JOBS)

build-fuzz/build.ninja: | $(SETUP_STAMP)
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAMPART_FUZZ=ON -DRAMPART_CUDA=OFF -DRAMPART_WERROR=OFF $(CMAKE_FLAGS)

tsan-units: $(SETUP_STAMP)
	CC=clang CXX=clang++ cmake -S . -B build-tsan-units -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" -DRAMPART_SANITIZE=thread -DRAMPART_CUDA=OFF \
	  -DRAMPART_WERROR=OFF $(CMAKE_FLAGS)
	cmake --build build-tsan-units -j $(JOBS) --target $(TSAN_UNITS)
	cd build-tsan-units && TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/sanitizers/tsan-units.supp" \
	  ctest --output-on-failure -j $(JOBS) -R '^($(shell echo $(TSAN_UNITS) | tr ' ' '|'))\.'

fuzz: build-fuzz/build.ninja
	cmake --build build-fuzz -j $(JOBS) --target rampart_fuzzers
	tools/run-fuzzers.sh build-fuzz/bin tests/fuzz/corpus $(FUZZ_SECONDS)

sanitize-units: build-fuzz/build.ninja
	cmake --build build-fuzz -j $(JOBS) --target $(SANITIZE_UNITS)
	cd build-fuzz && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -R '^($(shell echo $(SANITIZE_UNITS) | tr ' ' '|'))\.' -E 'rampartd'

# As root: rampartd with the monitor on lo, registered clients under load, then a SYN flood, a connection flood
# and a registration flood (loopback only); prints the figures per attack.
attack-demo: build
	RAMPART_STRICT_TIMING=1 build/bin/integration_attack_tests

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp' '*.cu')

clean:
	rm -rf build build-debug build-asan build-tsan build-tsan-units build-fuzz
