# test/bench/bench.mk: `make bench`, included by the top-level Makefile.
#
# Each benchmark links lib/libdiesel.a, built with the normal flags, and
# prints its method above a table of best and median figures, its peers
# measured side by side in the same run, and ends with lines to paste
# into a note.  Benchmarks print figures; they never assert a speed.
#
#   make bench                          all of them, in order
#   make bench BENCH_MILLION_N=100000   a smaller second bench_million
#
# bench_million runs twice, with 10000 and with BENCH_MILLION_N green
# threads, so that what grows with N shows.  The system call count needs
# strace (syscalls.sh says so and goes on without it).

BENCH_MILLION_N ?= 1000000
# Switches per strace run: the ucontext fallback costs a traced system
# call each, so it gets fewer.
BENCH_STRACE_N ?= 200000

DIESEL_BENCH := test/bench/bench_switch test/bench/bench_spawn \
    test/bench/bench_million
BENCH_BIN += $(DIESEL_BENCH)

$(DIESEL_BENCH): %: %.c test/bench/bench.h $(LIB) include/diesel.h $(FLAGS)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(LIB) $(ALL_LDFLAGS)

bench: $(DIESEL_BENCH)
	@echo
	@./test/bench/bench_switch
	@echo
	@sh test/bench/syscalls.sh ./test/bench/bench_switch $(BENCH_STRACE_N)
	@echo
	@./test/bench/bench_spawn
	@echo
	@./test/bench/bench_million 10000
	@echo
	@./test/bench/bench_million $(BENCH_MILLION_N)
	@echo
	@$(MAKE) --no-print-directory bench-net
