# spf-policyd — one Makefile for build, run, install and every test.
#
#   make run      install missing Debian packages (as root), build, run in the foreground
#   make check    install test packages, run unit, sanitizer, integration, conformance,
#                 valgrind and Postfix end-to-end tests; prints "N passed, M failed"
#   make install  PREFIX=/usr/local DESTDIR=
#
# User CFLAGS are kept; warnings live in WARNINGS (hiredis style).

PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system
DESTDIR ?=

CC      ?= cc
CFLAGS  ?= -O2 -g
WARNINGS = -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral
PKGS     = libcares inih hiredis
REAL_CFLAGS = -std=c11 -D_GNU_SOURCE -Iinclude $(WARNINGS) $(CFLAGS) \
              $$(pkg-config --cflags $(PKGS))
REAL_LDLIBS = $$(pkg-config --libs $(PKGS)) -lspf2 -lev -lm $(LDLIBS)
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

BUILD   = build
BIN     = $(BUILD)/spf-policyd
SRCS    = $(wildcard src/*.c)
LIBSRCS = $(filter-out src/main.c,$(SRCS))
OBJS    = $(SRCS:src/%.c=$(BUILD)/obj/%.o)
SAN_OBJS = $(SRCS:src/%.c=$(BUILD)/san/%.o)
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
UNIT_SAN_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit-san/%)
DNSD    = $(BUILD)/dnsd
FUZZERS = $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 30
LOADGEN = $(BUILD)/loadgen

# Debian packages: what the daemon needs to build, and what its tests need on top.
BUILD_DEBS = gcc libc6-dev make pkg-config libev-dev libspf2-dev libc-ares-dev \
             libinih-dev libhiredis-dev
TEST_DEBS  = python3 python3-yaml redis-server opendmarc postfix valgrind clang \
             libclang-rt-14-dev procps iproute2

.PHONY: all run check install clean deps test-deps unit unit-san integration \
        integration-san conformance valgrind e2e fuzz bench

all: $(BIN)

# Unit tests name the modules they link in a "// unit-deps: a b c" line, so a test
# links only what it exercises (postsrsd's tests/unit habit).
unit_deps = $(patsubst %,$(2)/%.o,$(shell sed -n 's|^// unit-deps: *||p' $(1)))

$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)/obj
	$(CC) $(REAL_CFLAGS) -c -o $@ $<

$(BUILD)/san/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)/san
	$(CC) $(REAL_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

$(BIN): $(OBJS)
	$(CC) $(CFLAGS) -o $@ $(OBJS) $(REAL_LDLIBS)

$(BUILD)/spf-policyd-san: $(SAN_OBJS)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $(SAN_OBJS) $(REAL_LDLIBS)

.SECONDEXPANSION:
$(BUILD)/unit/%: tests/unit/%.c tests/unit/unit.h $$(call unit_deps,tests/unit/%.c,$(BUILD)/obj) | $(BUILD)/unit
	$(CC) $(REAL_CFLAGS) -Itests/unit -o $@ $< $(call unit_deps,$<,$(BUILD)/obj) $(REAL_LDLIBS)

$(BUILD)/unit-san/%: tests/unit/%.c tests/unit/unit.h $$(call unit_deps,tests/unit/%.c,$(BUILD)/san) | $(BUILD)/unit-san
	$(CC) $(REAL_CFLAGS) $(SAN_FLAGS) -Itests/unit -o $@ $< $(call unit_deps,$<,$(BUILD)/san) $(REAL_LDLIBS)

$(DNSD): $(wildcard tests/dnsd/*.c tests/dnsd/*.h) | $(BUILD)
	$(CC) $(REAL_CFLAGS) -Itests/dnsd -o $@ $(wildcard tests/dnsd/*.c) -lev -lm

$(LOADGEN): $(wildcard tests/bench/*.c tests/bench/*.h) | $(BUILD)
	$(CC) $(REAL_CFLAGS) -o $@ $(wildcard tests/bench/*.c) -lev -lm

# libFuzzer harnesses link the one module they exercise, named like the harness.
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c src/%.c $(wildcard include/*.h) | $(BUILD)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c11 -D_GNU_SOURCE -Iinclude \
	  -o $@ tests/fuzz/fuzz_$*.c src/$*.c

# The record parser checks domain-specs with the macro module, and the harness expands
# them too. UBSan reports abort here, so the fuzzer counts them as failures.
$(BUILD)/fuzz_spf_record: tests/fuzz/fuzz_spf_record.c src/spf_record.c src/spf_macro.c \
                          $(wildcard include/*.h) | $(BUILD)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c11 \
	  -D_GNU_SOURCE -Iinclude -o $@ tests/fuzz/fuzz_spf_record.c src/spf_record.c src/spf_macro.c

$(BUILD) $(BUILD)/obj $(BUILD)/san $(BUILD)/unit $(BUILD)/unit-san:
	mkdir -p $@

# Installs only what is missing, and only as root; otherwise says what to install.
deps:
	@tests/lib/ensure-debs $(BUILD_DEBS)

test-deps:
	@tests/lib/ensure-debs $(BUILD_DEBS) $(TEST_DEBS)

run: deps
	$(MAKE) all
	$(BIN) -f $(if $(CONFIG),-c $(CONFIG))

# test_dns talks to the real test DNS server.
unit: $(UNIT_BINS) $(DNSD)
	@tests/lib/run-tests unit $(UNIT_BINS)

unit-san: $(UNIT_SAN_BINS) $(DNSD)
	@tests/lib/run-tests unit-san $(UNIT_SAN_BINS)

integration: $(BIN) $(DNSD)
	@tests/lib/run-tests integration $(sort $(wildcard tests/integration/test_*.py))

conformance: $(BIN) $(DNSD)
	@tests/lib/run-tests conformance tests/integration/conformance.py

# The integration tests again, with the daemon built with ASan+UBSan.
integration-san: $(BUILD)/spf-policyd-san $(DNSD)
	@SPF_POLICYD_BIN=$(CURDIR)/$(BUILD)/spf-policyd-san \
	  tests/lib/run-tests integration-san $(sort $(wildcard tests/integration/test_*.py))

valgrind: $(BIN) $(DNSD)
	@SPF_POLICYD_WRAPPER="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	  tests/lib/run-tests valgrind $(sort $(wildcard tests/integration/test_*.py))

fuzz: $(FUZZERS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/lib/run-tests fuzz tests/fuzz/run-fuzz

e2e: $(BIN) $(DNSD)
	@tests/lib/run-tests e2e $(wildcard tests/e2e/test_*.py)

check: test-deps
	rm -rf $(BUILD)/results
	$(MAKE) all $(DNSD) $(LOADGEN) $(UNIT_BINS) $(UNIT_SAN_BINS) $(BUILD)/spf-policyd-san
	-$(MAKE) --no-print-directory unit
	-$(MAKE) --no-print-directory unit-san
	-$(MAKE) --no-print-directory integration
	-$(MAKE) --no-print-directory integration-san
	-$(MAKE) --no-print-directory conformance
	-$(MAKE) --no-print-directory valgrind
	-$(MAKE) --no-print-directory e2e
	-$(MAKE) --no-print-directory fuzz
	@tests/lib/summarize $(BUILD)/results

install: $(BIN)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/spf-policyd $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/spf-policyd
	install -m 0644 policy.ini.example $(DESTDIR)$(SYSCONFDIR)/spf-policyd/policy.ini.example
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/spf-policyd.service > $(DESTDIR)$(UNITDIR)/spf-policyd.service

clean:
	rm -rf $(BUILD)
