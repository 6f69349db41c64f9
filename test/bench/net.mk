# test/bench/net.mk: the network benchmarks (echo and Redis protocol).
# Included by the top-level Makefile; `make bench` runs them after the
# foundation's benchmarks, the timed rates first (the examples with -t 1
# and -t 2: `make bench-cores` alone), then the counted figures
# (counted.sh; `make bench-counted` alone).  libuv and libevent peers are
# built where pkg-config finds them (Debian: libuv1-dev, libevent-dev).

NET_BENCH_BIN := test/bench/echo_load test/bench/echo_epoll
ifneq ($(shell pkg-config --exists libuv 2>/dev/null && echo y),)
NET_BENCH_BIN += test/bench/echo_uv
endif
ifneq ($(shell pkg-config --exists libevent 2>/dev/null && echo y),)
NET_BENCH_BIN += test/bench/echo_event
endif
BENCH_BIN += $(NET_BENCH_BIN) test/bench/bench_console

test/bench/bench_console: test/bench/bench_console.c test/console_client.c \
    test/console_client.h $(LIB)
	$(CC) $(ALL_CPPFLAGS) -Ilib $(ALL_CFLAGS) -o $@ $< test/console_client.c \
	    $(LIB) $(ALL_LDFLAGS)

test/bench/echo_load test/bench/echo_epoll: %: %.c
	$(CC) -O2 -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -o $@ $<

test/bench/echo_uv: test/bench/echo_uv.c
	$(CC) -O2 -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -o $@ $< \
	    $(shell pkg-config --cflags --libs libuv)

test/bench/echo_event: test/bench/echo_event.c
	$(CC) -O2 -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -o $@ $< \
	    $(shell pkg-config --cflags --libs libevent)

bench-net: all $(NET_BENCH_BIN) test/bench/bench_console
	@test/bench/bench_console
	@echo
	@test/bench/echo_bench.sh
	@test/bench/redis_bench.sh
	@echo
	@test/bench/cores_bench.sh
	@echo
	@test/bench/counted.sh

# The examples with one loop and with two (-t 1, -t 2): throughput and CPU
# time per request, side by side.
bench-cores: all test/bench/echo_load
	@test/bench/cores_bench.sh

# Counts, not times: instructions and cache misses per round trip under
# cachegrind, stable on a busy machine where the rates above are not.
bench-counted: all $(NET_BENCH_BIN)
	@test/bench/counted.sh

.PHONY: bench-net bench-counted bench-cores
