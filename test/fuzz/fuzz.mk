# test/fuzz/fuzz.mk: libFuzzer targets for the console (TESTPLAN 10),
# included by the Makefile.
#
#   make fuzz                 run each target for FUZZ_TIME seconds (60)
#   make fuzz FUZZ_TIME=600   longer
#
# fuzz_console feeds bytes to the line assembler, dispatch and framing;
# fuzz_console_session feeds them through a socketpair into a real session
# in a loop, with random chunking, then EOF or a reset.  Each is built from
# the library's sources with clang -fsanitize=fuzzer,address,undefined and
# starts from the seeds in test/fuzz/corpus/<target>; what it finds goes
# to a temporary directory, removed afterwards (a crash leaves its input
# in the current directory, as crash-*).

FUZZ_CC ?= clang
FUZZ_TIME ?= 60
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=all -fno-omit-frame-pointer
# The portable backend (what the targets test is the console, and it
# builds everywhere clang does) and the switch the build would use.
FUZZ_SRC := $(LIB_SRC) lib/poll_poll.c $(LIB_ASM)
FUZZ_DEFS := $(if $(LIB_ASM),,-DDIESEL_SWITCH_UCONTEXT)
FUZZ_BIN := test/fuzz/fuzz_console test/fuzz/fuzz_console_session

$(FUZZ_BIN): test/fuzz/%: test/fuzz/%.c $(FUZZ_SRC) $(LIB_HDR)
	$(FUZZ_CC) $(FUZZ_FLAGS) -Iinclude -Ilib -D_GNU_SOURCE $(FUZZ_DEFS) \
	    -std=c11 -pthread -o $@ $< $(FUZZ_SRC)

fuzz: $(FUZZ_BIN)
	@set -e; for t in $(FUZZ_BIN); do \
	    name=$${t##*/}; work=$$(mktemp -d); \
	    echo "== $$name: $(FUZZ_TIME) s"; \
	    ./$$t -max_total_time=$(FUZZ_TIME) -timeout=20 -rss_limit_mb=2048 \
	        -print_final_stats=1 $$work test/fuzz/corpus/$$name \
	        || { rm -rf $$work; exit 1; }; \
	    rm -rf $$work; \
	done

fuzz-clean:
	rm -f $(FUZZ_BIN)

clean: fuzz-clean

.PHONY: fuzz fuzz-clean
