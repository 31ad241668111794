# arca build: `make` (binary + plugins), `make check` (every test), `make install PREFIX=...`.
VERSION     := 0.1.0
PREFIX      ?= /usr/local
BUILD       ?= build
CC          ?= cc
PKG_CONFIG  ?= pkg-config

WARN        := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -O2 -g $(WARN) \
               -DARCA_VERSION='"$(VERSION)"' -Icore/include -Icore
CFLAGS      ?=
SAN         ?=
ALL_CFLAGS  := $(BASE_CFLAGS) $(SAN) $(CFLAGS)
LDFLAGS     ?=

CORE_PKGS   := libarchive libzstd jansson inih libcrypto
CORE_LIBS   := $(shell $(PKG_CONFIG) --libs $(CORE_PKGS)) -lpthread -ldl
CORE_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(CORE_PKGS))

CORE_SRC    := $(wildcard core/*.c)
CORE_OBJ    := $(patsubst core/%.c,$(BUILD)/core/%.o,$(CORE_SRC))
# the library part the unit tests link: everything but the command line
CORE_LIBOBJ := $(filter-out $(BUILD)/core/cli.o $(BUILD)/core/cmd_%.o,$(CORE_OBJ))

# Every folder under plugins/ except common/ is one plugin; plugins/common/*.c is
# linked into each of them, except the HTTP helpers (pc_http.c, pc_ranges.c), which go only
# into plugins whose pkgs name libcurl. A plugin's extra pkg-config packages:
# plugins/<n>/pkgs.
# Folders that are not plugins yet: ycql (issue 12) holds the CQL wire format and connection,
# unit-tested (tests/unit/test_ycql_*.c), and no plugin entry point so far.
NOT_PLUGINS := common ycql
PLUGINS     := $(filter-out $(NOT_PLUGINS),$(notdir $(patsubst %/,%,$(wildcard plugins/*/))))
PLUGIN_SO   := $(patsubst %,$(BUILD)/plugins/%.so,$(PLUGINS))
HTTP_SRC    := plugins/common/pc_http.c plugins/common/pc_ranges.c
COMMON_SRC  := $(filter-out $(HTTP_SRC),$(wildcard plugins/common/*.c))
plugin_src   = $(wildcard plugins/$(1)/*.c) $(COMMON_SRC) $(if $(filter libcurl,$(shell cat plugins/$(1)/pkgs 2>/dev/null)),$(HTTP_SRC))

.PHONY: all check install demo clean unit deps fuzz fuzz-build fuzz-bins
all: $(BUILD)/arca $(PLUGIN_SO)

$(BUILD)/core/%.o: core/%.c $(wildcard core/*.h) core/include/arca/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CORE_CFLAGS) -c $< -o $@

$(BUILD)/arca: $(CORE_OBJ)
	$(CC) $(SAN) $(LDFLAGS) -o $@ $^ $(CORE_LIBS)

define plugin_rule
$(BUILD)/plugins/$(1).so: $(wildcard plugins/$(1)/*.c plugins/$(1)/*.h) $(wildcard plugins/common/*.c plugins/common/*.h) core/include/arca/plugin.h
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_CFLAGS) -fPIC -shared -fvisibility=hidden -Iplugins/common \
	  $$(if $$(wildcard plugins/$(1)/pkgs),$$(shell $$(PKG_CONFIG) --cflags $$(shell cat plugins/$(1)/pkgs))) \
	  -o $$@ $(call plugin_src,$(1)) $$(LDFLAGS) \
	  $$(if $$(wildcard plugins/$(1)/pkgs),$$(shell $$(PKG_CONFIG) --libs $$(shell cat plugins/$(1)/pkgs))) -lpthread
endef
$(foreach p,$(PLUGINS),$(eval $(call plugin_rule,$(p))))

# The destination kit: built into nothing by default; the unit tests compile it
# in, and `make install` ships its source for vendors' own test programs.
DESTKIT_SRC := core/destkit/destkit.c
DESTKIT_H   := core/include/arca/destkit.h

# Unit tests (cmocka): tests/unit/test_<x>.c links the core objects except main.
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
UNIT_BIN    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
UNIT_HELP   := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c)) $(DESTKIT_SRC)
# plugin sources too: some unit tests compile a plugin's server-free files in directly
$(BUILD)/tests/%: tests/unit/%.c $(UNIT_HELP) $(wildcard tests/unit/*.h) $(DESTKIT_H) $(CORE_LIBOBJ) $(wildcard plugins/*/*.c plugins/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CORE_CFLAGS) $(shell $(PKG_CONFIG) --cflags libxml-2.0) -Itests/unit -Iplugins/common -o $@ $< $(UNIT_HELP) $(CORE_LIBOBJ) $(CORE_LIBS) $(shell $(PKG_CONFIG) --libs cmocka libxml-2.0 libssl)
unit: $(UNIT_BIN)

check: all unit
	tests/run

# Fuzzing with clang's libFuzzer (Debian: clang-14, libclang-rt-14-dev). The core is
# built again with ASan+UBSan in build-fuzz/; each tests/fuzz/fuzz_*.c harness runs
# for FUZZ_SECONDS from its seed corpus, then replays every saved regression input.
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
fuzz-build:
	$(MAKE) -s BUILD=build-fuzz CC=$(FUZZ_CC) SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" fuzz-bins
fuzz-bins: $(FUZZ_BIN)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(CORE_LIBOBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CORE_CFLAGS) -fsanitize=fuzzer -o $@ $< $(CORE_LIBOBJ) $(CORE_LIBS)
fuzz: fuzz-build
	tests/fuzz/run build-fuzz/fuzz $(FUZZ_SECONDS)

demo: all
	tests/demo.sh

deps:
	./run deps

# For plugin writers: the header, the destination kit (header and source, for
# their own test programs), the guide, and the example plugin with its test
# program and a Makefile that builds both against this installation.
EXAMPLE     := tests/vendor-plugin/dirstore.c tests/vendor-plugin/probe.c tests/vendor-plugin/Makefile
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/arca/plugins \
	  $(DESTDIR)$(PREFIX)/include/arca $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/share/arca/destkit $(DESTDIR)$(PREFIX)/share/arca/examples/dirstore \
	  $(DESTDIR)$(PREFIX)/share/doc/arca
	install -m 755 $(BUILD)/arca $(DESTDIR)$(PREFIX)/bin/arca
	install -m 755 $(PLUGIN_SO) $(DESTDIR)$(PREFIX)/lib/arca/plugins/
	install -m 644 core/include/arca/plugin.h $(DESTDIR)$(PREFIX)/include/arca/plugin.h
	install -m 644 $(DESTKIT_H) $(DESTDIR)$(PREFIX)/include/arca/destkit.h
	install -m 644 $(DESTKIT_SRC) $(DESTDIR)$(PREFIX)/share/arca/destkit/destkit.c
	install -m 644 docs/PLUGINS.md $(DESTDIR)$(PREFIX)/share/doc/arca/PLUGINS.md
	install -m 644 $(EXAMPLE) $(DESTDIR)$(PREFIX)/share/arca/examples/dirstore/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' core/arca-plugin.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/arca-plugin.pc

clean:
	rm -rf $(BUILD) build-fuzz
