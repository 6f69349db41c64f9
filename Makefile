# libdiesel
#
#   make                  lib/libdiesel.a, tools/dconsole, the examples
#   make check            every test suite (every backend this system has),
#                         after test/deps.sh has installed what they need
#   make bench            benchmarks, with their peers, side by side
#   make lint             mandoc -Tlint on the man pages
#   make check-docs       man finds every function and cited page once
#                         installed (make check runs it)
#   make install          PREFIX (/usr/local) and DESTDIR honoured; a man
#                         link per function of a family page; the gdb
#                         extension in $(PREFIX)/share/libdiesel
#   make uninstall | clean
#
#   make check-tsan       the suites of loops on several threads under
#                         ThreadSanitizer (rebuilds with SANITIZE=thread)
#
# Variants: SANITIZE=address,undefined   BACKEND=epoll|kqueue|poll
#           SWITCH=asm|ucontext          WERROR=1 (as CI builds)
#           CHECK_BACKENDS=epoll         check runs only these backends
#           CHECK_SUITES="task fd"       ... and only these suites on the
#                                        library's own (default: all)
# CC, CFLAGS, CPPFLAGS and LDFLAGS are honoured.  Changing any of them
# rebuilds what they touch (see FLAGS below).

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

CFLAGS ?= -O2 -g
UNAME_S := $(shell uname -s)
UNAME_M := $(shell uname -m)

ifeq ($(UNAME_S),Linux)
PLATFORM := linux
DEFAULT_BACKEND := epoll
CHECK_BACKENDS := epoll poll $(if $(wildcard test/kqshim/kqueue.c),kqueue)
else ifneq ($(filter Darwin FreeBSD OpenBSD NetBSD DragonFly,$(UNAME_S)),)
PLATFORM := bsd
DEFAULT_BACKEND := kqueue
CHECK_BACKENDS := kqueue poll
else
PLATFORM := bsd
DEFAULT_BACKEND := poll
CHECK_BACKENDS := poll
endif
BACKEND ?= $(DEFAULT_BACKEND)

ifneq ($(filter x86_64 amd64,$(UNAME_M)),)
ARCH := x86_64
else ifneq ($(filter aarch64 arm64,$(UNAME_M)),)
ARCH := aarch64
else
ARCH := none
endif
ifeq ($(ARCH),none)
SWITCH ?= ucontext
else
SWITCH ?= asm
endif

# What every object needs, whatever CFLAGS says.
DIESEL_CPPFLAGS := -Iinclude -D_GNU_SOURCE
DIESEL_CFLAGS := -std=c11 -Wall -Wextra -fvisibility=hidden -pthread
ifeq ($(WERROR),1)
DIESEL_CFLAGS += -Werror
endif
# Probe each stack page of large frames so that they hit the guard page.
DIESEL_CFLAGS += $(shell $(CC) -fstack-clash-protection -Werror -E -x c \
    /dev/null >/dev/null 2>&1 && echo -fstack-clash-protection)
ifneq ($(SANITIZE),)
DIESEL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
    -fno-sanitize-recover=all
# The round trip's own assertions (internal.h) are checked here.
DIESEL_CPPFLAGS += -DDIESEL_DEBUG
DIESEL_LDFLAGS += -fsanitize=$(SANITIZE)
endif
ifeq ($(SWITCH),ucontext)
DIESEL_CPPFLAGS += -DDIESEL_SWITCH_UCONTEXT
endif
DIESEL_LDFLAGS += -pthread

ALL_CPPFLAGS = $(DIESEL_CPPFLAGS) $(CPPFLAGS)
ALL_CFLAGS = $(DIESEL_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(DIESEL_LDFLAGS) $(LDFLAGS)

# Rebuild everything when the compiler, the flags or a variant changes.
FLAGS := lib/.flags
FLAGS_NOW := $(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) $(BACKEND) $(SWITCH)
ifneq ($(shell cat $(FLAGS) 2>/dev/null),$(strip $(FLAGS_NOW)))
$(shell printf '%s\n' '$(strip $(FLAGS_NOW))' > $(FLAGS))
endif

# ---- The library ---------------------------------------------------------

# Every lib/*.c but the backends and platforms, which are picked below.
LIB_SRC := $(filter-out lib/poll_% lib/platform_%,$(wildcard lib/*.c)) \
    lib/platform_$(PLATFORM).c
ifeq ($(SWITCH),asm)
LIB_ASM := lib/switch_$(ARCH).S
endif
LIB_HDR := include/diesel.h $(wildcard lib/*.h)
CORE_OBJ := $(LIB_SRC:.c=.o) $(LIB_ASM:.S=.o)

# The kqueue backend runs here through a kqueue-over-epoll shim that lives
# under test/ (see test/kqshim/README).
ifeq ($(PLATFORM),linux)
KQ_CPPFLAGS := -Itest/kqshim
KQ_OBJ := lib/poll_kqueue.o test/kqshim/kqueue.o
else
KQ_OBJ := lib/poll_kqueue.o
endif
EPOLL_OBJ := lib/poll_epoll.o
POLL_OBJ := lib/poll_poll.o
backend_obj = $(if $(filter kqueue,$(1)),$(KQ_OBJ),$(if $(filter epoll,$(1)),$(EPOLL_OBJ),$(POLL_OBJ)))

LIB := lib/libdiesel.a

all: $(LIB) tools examples

$(LIB): $(CORE_OBJ) $(call backend_obj,$(BACKEND))
	rm -f $@
	$(AR) rcs $@ $^

lib/%.o: lib/%.c $(LIB_HDR) $(FLAGS)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# Backtraces fold the library's own frames: its static functions are
# known by their file's name (the STT_FILE symbol before them).
lib/backtrace.o: DIESEL_CPPFLAGS += \
    -DDIESEL__LIB_FILES='"$(sort $(notdir $(wildcard lib/*.c lib/*.S)))"'

lib/%.o: lib/%.S $(FLAGS)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

lib/poll_kqueue.o: lib/poll_kqueue.c $(LIB_HDR) $(FLAGS)
	$(CC) $(ALL_CPPFLAGS) $(KQ_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

test/kqshim/kqueue.o: test/kqshim/kqueue.c test/kqshim/sys/event.h $(FLAGS)
	$(CC) $(ALL_CPPFLAGS) $(KQ_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# ---- Tools and examples ----------------------------------------------------

TOOLS := tools/dconsole
EXAMPLES := examples/echo examples/httphello examples/redisping examples/chat \
    examples/collect

# Modules for the console's load (shared objects): built as a reader
# would build one (diesel_console(3)), without the sanitizers, which
# come from the service that loads them.
EXAMPLE_MODULES := examples/redisping_conns.so

tools: $(TOOLS)
examples: $(EXAMPLES) $(EXAMPLE_MODULES)

tools/%: tools/%.c $(LIB) include/diesel.h
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(LIB) $(ALL_LDFLAGS)

# dconsole is several files: the line editor on its own (the tests link
# it), the dummy service and the local console.
DCONSOLE_SRC := tools/dconsole.c tools/dconsole_edit.c \
    tools/dconsole_dummy.c tools/dconsole_local.c tools/dconsole_fetch.c
DCONSOLE_OBJ := $(DCONSOLE_SRC:.c=.o)

tools/%.o: tools/%.c tools/dconsole.h tools/dconsole_edit.h \
    tools/dconsole_local.h include/diesel.h $(FLAGS)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# -rdynamic: the dummy's stuck report names the function holding the loop.
tools/dconsole: $(DCONSOLE_OBJ) $(LIB)
	$(CC) -rdynamic -o $@ $(DCONSOLE_OBJ) $(LIB) $(ALL_LDFLAGS)

examples/%: examples/%.c examples/cores.h $(LIB) include/diesel.h
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(LIB) $(ALL_LDFLAGS)

examples/redisping: examples/redisping.h

MODULE_CFLAGS = -std=c11 -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) \
    $(CFLAGS) -fPIC -shared

examples/%.so: examples/%.c include/diesel.h $(FLAGS)
	$(CC) $(ALL_CPPFLAGS) $(MODULE_CFLAGS) -o $@ $<

examples/redisping_conns.so: examples/redisping.h

# ---- Tests -----------------------------------------------------------------

CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)
TEST_SRC := $(wildcard test/check_*.c)
TEST_OBJ := $(TEST_SRC:.c=.o) test/helpers.o test/main.o test/console_client.o test/proc.o \
    tools/dconsole_edit.o
ifeq ($(PLATFORM),linux)
# check_kqshim.c tests the shim itself, whatever backend the binary has.
TEST_OBJ += test/kqshim/kqueue.o
test/check_kqshim.o: test/kqshim/sys/event.h
endif
TEST_BIN := $(foreach b,$(CHECK_BACKENDS),test/check_diesel_$(b))
TEST_HELPERS := $(patsubst %.c,%,$(wildcard test/*_child.c))

# One line per suite, SUITE(name) for test/check_name.c, rewritten when
# make starts and the list of suites has changed (a suite removed leaves
# no file whose date could tell).
SUITES := $(sort $(patsubst test/check_%.c,%,$(TEST_SRC)))
$(shell printf 'SUITE(%s)\n' $(SUITES) > test/suites.h.tmp; \
    cmp -s test/suites.h.tmp test/suites.h || \
    mv test/suites.h.tmp test/suites.h; rm -f test/suites.h.tmp)

test/main.o: test/suites.h

test/%.o: test/%.c test/tests.h test/console_client.h test/proc.h \
    test/hostile.h $(LIB_HDR) $(FLAGS) | deps
	$(CC) $(ALL_CPPFLAGS) -Ilib $(CHECK_CFLAGS) $(ALL_CFLAGS) -c -o $@ $<

.SECONDEXPANSION:
test/check_diesel_%: $(TEST_OBJ) $(CORE_OBJ) $$(call backend_obj,$$*)
	$(CC) -o $@ $^ $(CHECK_LIBS) $(ALL_LDFLAGS)

# A module for check_module.c, and one built for another interface
# version (the refusal's test).
TEST_MODULES := test/module_mod.so test/module_v99_mod.so
test/module_mod.so: test/module_mod.c include/diesel.h $(FLAGS)
	$(CC) $(ALL_CPPFLAGS) $(MODULE_CFLAGS) -o $@ $<
test/module_v99_mod.so: test/module_mod.c include/diesel.h $(FLAGS)
	$(CC) $(ALL_CPPFLAGS) -DMODULE_VERSION=99 $(MODULE_CFLAGS) -o $@ $<

test/%_child: test/%_child.c test/deep_stack.h test/hostile.h $(LIB) $(FLAGS)
	$(CC) $(ALL_CPPFLAGS) -Ilib $(ALL_CFLAGS) -rdynamic -o $@ $< $(LIB) \
	    $(ALL_LDFLAGS)

# An LD_PRELOAD shim for the symlink-swap tests (TESTPLAN 9d): no
# sanitizer in it, since it loads before the sanitizer's runtime.
TEST_SHIMS := test/swap_shim.so
test/swap_shim.so: test/swap_shim.c $(FLAGS)
	$(CC) $(ALL_CPPFLAGS) -std=c11 -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) \
	    -O2 -fPIC -shared -o $@ $< -ldl

# Every suite on the default backend; the loop-facing suites on the others.
LOOP_SUITES := $(filter task timer fd sync chan cores net signal console stuck client,$(patsubst test/check_%.c,%,$(TEST_SRC)))
check-build: all $(TEST_BIN) $(TEST_HELPERS) $(TEST_SHIMS) $(TEST_MODULES)

# What the tests need (Check, the real clients, man), installed when we
# may, else named with the command that installs it: before anything is
# built, so that a missing check.h is not a compiler error.
deps:
	@sh test/deps.sh check

check: deps
	@$(MAKE) --no-print-directory check-run

check-run: check-build
	@set -e; for b in $(CHECK_BACKENDS); do \
	    if [ $$b = $(BACKEND) ]; then suites="$(CHECK_SUITES)"; else suites="$(LOOP_SUITES)"; fi; \
	    echo "== backend $$b: $${suites:-all suites}"; \
	    DIESEL_TEST_DIR=test DIESEL_TOOLS_DIR=tools \
	    ./test/check_diesel_$$b $$suites; \
	done
	@MAKE='$(MAKE)' sh test/docs.sh

# Loops on several OS threads under ThreadSanitizer: the channel, accept
# on every loop, the console's signal handler with one or every loop stuck
# (stuck), the examples with -t 2 (their own processes, built with it
# too).  It builds this tree with SANITIZE=thread (ASan cannot be
# combined with it): `make clean` goes back to the usual build.
TSAN_SUITES := chan cores loops stuck
check-tsan: deps
	@$(MAKE) --no-print-directory SANITIZE=thread \
	    CHECK_BACKENDS=$(BACKEND) check-build
	DIESEL_TEST_DIR=test DIESEL_TOOLS_DIR=tools \
	    ./test/check_diesel_$(BACKEND) $(TSAN_SUITES)
	DIESEL_TEST_DIR=test DIESEL_TOOLS_DIR=tools CK_RUN_CASE=cores \
	    ./test/check_diesel_$(BACKEND) examples

# ---- Benchmarks ------------------------------------------------------------

BENCH_BIN :=

bench: all $(BENCH_BIN)

-include test/bench/net.mk

# ---- Man pages, install ------------------------------------------------------

MAN3 := $(wildcard man/*.3)
MAN1 := $(wildcard man/*.1)
MAN7 := $(wildcard man/*.7)

lint:
	mandoc -Tlint -Wwarning man/*.[1-9]

# Every function a family page documents (the .Nm lines of its NAME
# section) gets a link to that page, as BSD's MLINKS, so that
# `man diesel_task_spawn` finds diesel_task(3): "page name" per line.
MLINKS_CMD = awk '/^\.Sh NAME/ { n = 1; next } /^\.Sh/ { n = 0 } \
    n && $$1 == ".Nm" { f = FILENAME; sub(".*/", "", f); \
    if ($$2 ".3" != f) print f, $$2 }' $(MAN3)

# The manual against the header, after a real install (test/docs.sh).
check-docs: all
	MAKE='$(MAKE)' sh test/docs.sh

lib/libdiesel.pc: $(FLAGS)
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' \
	    'includedir=$(INCLUDEDIR)' '' 'Name: libdiesel' \
	    'Description: green threads, an event loop and a live console for C services' \
	    'Version: 0.1.0' 'Cflags: -I$${includedir}' \
	    'Libs: -L$${libdir} -ldiesel -pthread' > $@

install: all lib/libdiesel.pc
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
	    $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
	    $(DESTDIR)$(MANDIR)/man7
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/
	install -m 644 include/diesel.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 lib/libdiesel.pc $(DESTDIR)$(PKGCONFIGDIR)/
	$(if $(TOOLS),install -m 755 $(TOOLS) $(DESTDIR)$(BINDIR)/)
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/)
	$(if $(MAN3),install -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/)
	$(MLINKS_CMD) | while read page name; do \
	    ln -sf $$page $(DESTDIR)$(MANDIR)/man3/$$name.3 || exit 1; \
	done
	$(if $(MAN7),install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7/)
	install -d $(DESTDIR)$(DATADIR)/libdiesel
	install -m 644 tools/diesel-gdb.py $(DESTDIR)$(DATADIR)/libdiesel/

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libdiesel.a $(DESTDIR)$(INCLUDEDIR)/diesel.h \
	    $(DESTDIR)$(PKGCONFIGDIR)/libdiesel.pc
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(TOOLS)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man3/,$(notdir $(MAN3)))
	$(MLINKS_CMD) | while read page name; do \
	    rm -f $(DESTDIR)$(MANDIR)/man3/$$name.3; \
	done
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man7/,$(notdir $(MAN7)))
	rm -f $(DESTDIR)$(DATADIR)/libdiesel/diesel-gdb.py
	-rmdir $(DESTDIR)$(DATADIR)/libdiesel 2>/dev/null

clean:
	rm -f lib/*.o lib/*.a lib/libdiesel.pc lib/.flags test/*.o test/suites.h \
	    tools/*.o \
	    test/kqshim/*.o $(TEST_BIN) $(TEST_HELPERS) $(TEST_SHIMS) $(TOOLS) $(EXAMPLES) \
	    $(EXAMPLE_MODULES) $(TEST_MODULES) \
	    $(BENCH_BIN)

.PHONY: all tools examples deps check check-run check-build check-docs \
    check-tsan bench \
    lint install uninstall clean

# make check-cross-aarch64: the aarch64 switch under qemu-user.
-include test/cross/cross.mk
-include test/bench/bench.mk

# make fuzz: the console's libFuzzer targets (clang).
-include test/fuzz/fuzz.mk

# Keep objects that pattern rules chain through.
.SECONDARY:
