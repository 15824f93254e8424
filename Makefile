# Linkage build. `make run` and `make test` install what is missing first
# (deploy/install-deps.sh), so both work on a fresh Debian 12 machine.

CC       ?= cc
CSTD     := -std=c11 -D_GNU_SOURCE
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
OPT      ?= -O2 -g
PKGS     := libzmq libuv libprotobuf-c libsodium yaml-0.1 libpq libmicrohttpd json-c libsystemd
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
SAN      ?=
BUILD    ?= build
BIN      ?= bin
CFLAGS_ALL = $(CSTD) $(WARN) $(OPT) $(SAN) -Iinclude -I$(BUILD)/gen $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL = $(SAN) $(LDFLAGS)

PROTOS   := $(wildcard proto/linkage/v1/*.proto)
GEN_C    := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H    := $(GEN_C:.c=.h)
GEN_O    := $(GEN_C:.c=.o)

COMMON_SRC := $(wildcard services/common/*.c)
COMMON_O   := $(patsubst %.c,$(BUILD)/%.o,$(COMMON_SRC))
LIB        := $(BUILD)/liblinkage.a

# Every folder under services/ except common is one program: services/<x>/ -> bin/<name>.
DAEMONS  := ledger intake router dispatch gateway
PROGRAMS := $(addprefix $(BIN)/linkage-,$(DAEMONS)) $(BIN)/linkagectl

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

# Fuzz targets: tests/fuzz/fuzz_<name>.c. `make test` replays each one's corpus through
# $(BUILD)/tests/fuzz_replay_<name> (the normal toolchain, sanitised under `make asan`);
# `make fuzz` builds them with clang and libFuzzer into build-fuzz/ (tests/fuzz/run-fuzz.sh).
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY := $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/tests/fuzz_replay_%,$(FUZZ_SRC))
FUZZ_BIN    := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

BENCH_SRC := $(wildcard tests/bench/*.c)
BENCH_BIN := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

# Load generators of the chaos tests (tests/chaos/*.c -> $(BUILD)/chaos/*).
CHAOS_SRC := $(wildcard tests/chaos/*.c)
CHAOS_BIN := $(patsubst tests/chaos/%.c,$(BUILD)/chaos/%,$(CHAOS_SRC))

.PHONY: all deps run test unit bench chaos asan fuzz fuzz-bins format lint clean install uninstall
.SECONDARY:

all: $(PROGRAMS) $(UNIT_BIN) $(BENCH_BIN) $(FUZZ_REPLAY) $(CHAOS_BIN)

deps:
	@deploy/install-deps.sh

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Iproto $<

$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c $(GEN_H)
	$(CC) $(CSTD) $(OPT) $(SAN) -I$(BUILD)/gen $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.c $(GEN_H) $(wildcard include/linkage/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(LIB): $(COMMON_O) $(GEN_O)
	@rm -f $@
	ar rcs $@ $^

define program
$(BIN)/$(1): $(patsubst %.c,$(BUILD)/%.o,$(wildcard services/$(2)/*.c)) $(LIB)
	@mkdir -p $(BIN)
	$$(CC) $$(LDFLAGS_ALL) $$^ $$(PKG_LIBS) -o $$@
endef
$(foreach d,$(DAEMONS),$(eval $(call program,linkage-$(d),$(d))))
$(eval $(call program,linkagectl,linkagectl))

# A daemon's decisions are unit-tested without its main.c: the other objects of its folder go into
# an archive, so a test pulls in only the objects it uses (not the daemon's socket shell).
UNIT_CORES := $(sort $(DAEMONS) gateway) linkagectl
SVC_CORE_O = $(patsubst %.c,$(BUILD)/%.o,$(filter-out %/main.c,$(wildcard services/$(1)/*.c)))
SVC_LIBS := $(foreach d,$(UNIT_CORES),$(BUILD)/libsvc_$(d).a)
define svclib
$(BUILD)/libsvc_$(1).a: $(call SVC_CORE_O,$(1))
	@rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach d,$(UNIT_CORES),$(eval $(call svclib,$(d))))

$(BUILD)/tests/%: tests/unit/%.c tests/unit/lk_test.h $(LIB) $(SVC_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit -Iservices $< $(SVC_LIBS) $(LIB) $(LDFLAGS_ALL) $(PKG_LIBS) -o $@

$(BUILD)/tests/fuzz_replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(wildcard tests/fuzz/*.h) $(LIB) $(SVC_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/fuzz -Iservices -DFUZZ_NAME='"$*"' $< tests/fuzz/replay.c \
	  $(SVC_LIBS) $(LIB) $(LDFLAGS_ALL) $(PKG_LIBS) -o $@

# Only with CC=clang and SAN holding -fsanitize=fuzzer-no-link (run-fuzz.sh sets both).
$(BUILD)/fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(LIB) $(SVC_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fsanitize=fuzzer -Itests/fuzz -Iservices $< \
	  $(SVC_LIBS) $(LIB) $(LDFLAGS_ALL) -fsanitize=fuzzer $(PKG_LIBS) -o $@

fuzz-bins: $(FUZZ_BIN)

# Benchmarks may use a daemon's core (e.g. the ledger's row encoder) through its archive.
$(BUILD)/bench/%: tests/bench/%.c $(wildcard tests/bench/*.h) $(LIB) $(SVC_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Iservices $< $(SVC_LIBS) $(LIB) $(LDFLAGS_ALL) $(PKG_LIBS) -o $@

$(BUILD)/chaos/%: tests/chaos/%.c tests/bench/bench_report.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< $(LIB) $(LDFLAGS_ALL) $(PKG_LIBS) -o $@

# The chaos tests' fixed link delay (this kernel has no netem): NFQUEUE, nothing of ours.
$(BUILD)/chaos/delayq: tests/chaos/delayq.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< $(LDFLAGS_ALL) -lnetfilter_queue -o $@

# The Python clients are built by stock protoc from the same .proto files; every module is a
# target, so a tree generated before a .proto was added is brought up to date.
PY_PB2 := $(patsubst proto/%.proto,$(BUILD)/py/%_pb2.py,$(PROTOS))
$(PY_PB2) &: $(PROTOS)
	@mkdir -p $(BUILD)/py
	protoc --python_out=$(BUILD)/py -Iproto $(PROTOS)
	@touch $(BUILD)/py/linkage/__init__.py $(BUILD)/py/linkage/v1/__init__.py

run: deps all
	@deploy/run.sh

test: deps all $(PY_PB2)
	@tests/run-all.sh

unit: all
	@tests/run-all.sh unit

bench: deps all $(PY_PB2)
	@tests/bench/run-bench.sh

# The long overload and bad-peer runs (a minute or more each); `make test` runs short versions.
chaos: deps all $(PY_PB2)
	@tests/chaos/run-chaos.sh

asan:
	$(MAKE) BUILD=build-asan BIN=build-asan/bin OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

FUZZ_SECONDS ?= 60
fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run-fuzz.sh

format:
	clang-format -i $(shell find services include tests -name '*.[ch]')

lint: all
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem -Iinclude -I$(BUILD)/gen services tests/unit
	clang-tidy --quiet $(COMMON_SRC) $(foreach d,$(DAEMONS) linkagectl,$(wildcard services/$(d)/*.c)) -- \
	  $(CSTD) -Iinclude -I$(BUILD)/gen $(PKG_CFLAGS)

# `make install [PREFIX=/usr/local] [DESTDIR=]`: programs to $(BINDIR), the systemd units to
# $(UNITDIR) (in systemd's search path for both /usr and /usr/local), the dashboard to
# $(DATADIR)/linkage/www. Settings go to $(SYSCONFDIR)/linkage (/etc/linkage whatever PREFIX is)
# and only when absent, so a reinstall keeps the operator's; pristine copies are in
# $(DATADIR)/linkage/examples. The units are made from deploy/systemd/*.in with these paths
# filled in, so they name the binaries installed here (README "Deploying").
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
DATADIR     ?= $(PREFIX)/share
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
SYSCONFDIR  ?= /etc
INSTALL     ?= install
UNIT_IN     := $(wildcard deploy/systemd/*.service.in)
UNIT_FILES  := $(notdir $(UNIT_IN:.in=)) linkage.target
ETC_FILES   := deploy/systemd/linkage.env:linkage.env:0600 \
  deploy/district/wenjiang.yaml:district.yaml:0644 \
  deploy/nftables/linkage-limit.nft:linkage-limit.nft:0644
SUBST = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' \
  -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'

install: $(PROGRAMS)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	  $(DESTDIR)$(DATADIR)/linkage/www $(DESTDIR)$(DATADIR)/linkage/examples \
	  $(DESTDIR)$(SYSCONFDIR)/linkage
	$(INSTALL) -m 0755 $(PROGRAMS) $(DESTDIR)$(BINDIR)/
	@for f in $(UNIT_IN); do \
	  $(SUBST) $$f >$(DESTDIR)$(UNITDIR)/$$(basename $$f .in) && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$f .in) || exit 1; \
	done
	$(INSTALL) -m 0644 deploy/systemd/linkage.target $(DESTDIR)$(UNITDIR)/
	$(INSTALL) -m 0644 deploy/systemd/linkage.sysusers $(DESTDIR)$(SYSUSERSDIR)/linkage.conf
	$(INSTALL) -m 0644 services/gateway/www/* $(DESTDIR)$(DATADIR)/linkage/www/
	@for e in $(ETC_FILES); do \
	  src=$${e%%:*}; rest=$${e#*:}; name=$${rest%%:*}; mode=$${rest#*:}; \
	  $(INSTALL) -m 0644 $$src $(DESTDIR)$(DATADIR)/linkage/examples/$$name || exit 1; \
	  dst=$(DESTDIR)$(SYSCONFDIR)/linkage/$$name; \
	  if [ ! -e $$dst ]; then $(INSTALL) -m $$mode $$src $$dst || exit 1; \
	  else echo "linkage: keeping $$dst (the new one: $(DATADIR)/linkage/examples/$$name)"; fi; \
	done

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(PROGRAMS))) \
	  $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNIT_FILES)) $(DESTDIR)$(SYSUSERSDIR)/linkage.conf
	rm -rf $(DESTDIR)$(DATADIR)/linkage
	@echo "linkage: $(SYSCONFDIR)/linkage and the user linkage are left in place"

clean:
	rm -rf build build-asan build-fuzz bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
