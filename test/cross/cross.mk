# test/cross/cross.mk: the aarch64 switch, built with a cross compiler and
# run under qemu-user.  Included by the top-level Makefile, whose LIB,
# LIB_HDR and flags it uses.
#
#   make check-cross-aarch64   lib/*.c + lib/switch_aarch64.S compiled with
#                              CROSS_CC into test/cross/obj/ (the native
#                              lib/*.o are left alone), switch_smoke linked
#                              against them, run under qemu with the
#                              register switch and with DIESEL_SWITCH=ucontext
#   make check-switch-smoke    the same smoke test, native, on lib/libdiesel.a
#
# Debian: apt-get install gcc-aarch64-linux-gnu qemu-user.  Without them
# check-cross-aarch64 says so and succeeds.

CROSS_CC ?= aarch64-linux-gnu-gcc
CROSS_QEMU ?= qemu-aarch64
CROSS_SYSROOT ?= /usr/aarch64-linux-gnu
CROSS_OBJDIR := test/cross/obj
# Always Linux (qemu-user runs Linux binaries): the epoll backend.
CROSS_SRC := $(filter-out lib/poll_% lib/platform_%,$(wildcard lib/*.c)) \
    lib/platform_linux.c lib/poll_epoll.c
CROSS_OBJ := $(patsubst lib/%.c,$(CROSS_OBJDIR)/%.o,$(CROSS_SRC)) \
    $(CROSS_OBJDIR)/switch_aarch64.o
# The register switch always (not SWITCH=): DIESEL_SWITCH=ucontext at run
# time covers the fallback.  -O2 puts the smoke test's locals in registers.
CROSS_FLAGS := -Iinclude -D_GNU_SOURCE -std=c11 -Wall -Wextra -O2 -g -pthread
CROSS_BIN := test/cross/switch_smoke-aarch64
CROSS_BT_BIN := test/cross/bt_smoke-aarch64
SMOKE_BIN := test/cross/switch_smoke
# TEMPORARY, until the console branch lands: every lib/ object is linked
# here, console_builtins.o among them, so the console calls it uses come

# Without frame records the library's own frames do not save x29 on the
# way to the switch, so the smoke test sees it if the switch loses it.
$(CROSS_OBJDIR)/%.o: lib/%.c $(LIB_HDR) test/cross/cross.mk
	@mkdir -p $(CROSS_OBJDIR)
	$(CROSS_CC) $(CROSS_FLAGS) -fvisibility=hidden -fomit-frame-pointer \
	    -c -o $@ $<

$(CROSS_OBJDIR)/%.o: lib/%.S test/cross/cross.mk
	@mkdir -p $(CROSS_OBJDIR)
	$(CROSS_CC) $(CROSS_FLAGS) -c -o $@ $<

$(CROSS_BIN): test/cross/switch_smoke.c $(CROSS_OBJ) include/diesel.h
	$(CROSS_CC) $(CROSS_FLAGS) -Ilib -o $@ $< $(CROSS_OBJ) \
	    -lm

# Backtraces of suspended green threads (lib/backtrace.c).
$(CROSS_BT_BIN): test/cross/bt_smoke.c $(CROSS_OBJ) $(LIB_HDR)
	$(CROSS_CC) $(CROSS_FLAGS) -Ilib -o $@ $< $(CROSS_OBJ)

$(SMOKE_BIN): test/cross/switch_smoke.c $(LIB) include/diesel.h
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -O2 -o $@ $< $(LIB) -lm \
	    $(ALL_LDFLAGS)

# The tools are looked for only when this target is asked for; a missing
# one is a message, not a failure.
ifneq ($(filter check-cross-aarch64,$(MAKECMDGOALS)),)
CROSS_MISSING := $(foreach t,$(CROSS_CC) $(CROSS_QEMU),\
    $(if $(shell command -v $(t) 2>/dev/null),,$(t)))
endif

check-cross-aarch64: $(if $(strip $(CROSS_MISSING)),,$(CROSS_BIN) $(CROSS_BT_BIN))
ifneq ($(strip $(CROSS_MISSING)),)
	@echo "check-cross-aarch64: skipped: $(strip $(CROSS_MISSING)) not" \
	    "found (apt-get install gcc-aarch64-linux-gnu qemu-user)"
else
	@echo "== aarch64 (qemu): register switch" && \
	    $(CROSS_QEMU) -L $(CROSS_SYSROOT) ./$(CROSS_BIN) && \
	    echo "== aarch64 (qemu): DIESEL_SWITCH=ucontext" && \
	    DIESEL_SWITCH=ucontext $(CROSS_QEMU) -L $(CROSS_SYSROOT) \
	        ./$(CROSS_BIN) && \
	    echo "== aarch64 (qemu): backtraces, register switch" && \
	    $(CROSS_QEMU) -L $(CROSS_SYSROOT) ./$(CROSS_BT_BIN) && \
	    echo "== aarch64 (qemu): backtraces, DIESEL_SWITCH=ucontext" && \
	    DIESEL_SWITCH=ucontext $(CROSS_QEMU) -L $(CROSS_SYSROOT) \
	        ./$(CROSS_BT_BIN)
endif

check-switch-smoke: $(SMOKE_BIN)
	@echo "== $(UNAME_M): register switch" && ./$(SMOKE_BIN) && \
	    echo "== $(UNAME_M): DIESEL_SWITCH=ucontext" && \
	    DIESEL_SWITCH=ucontext ./$(SMOKE_BIN)

clean: clean-cross
clean-cross:
	rm -rf $(CROSS_OBJDIR) $(CROSS_BIN) $(CROSS_BT_BIN) $(SMOKE_BIN)

.PHONY: check-cross-aarch64 check-switch-smoke clean-cross
