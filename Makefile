# coderunner-db: `make` builds the C core for Lua 5.4; `make LUA=luajit` for LuaJIT.
# `make test` installs what it lacks, builds both, and runs every spec on a
# throwaway PostgreSQL cluster. `luarocks make` drives the same targets.

# LUA names the VM: lua5.4, or luajit (the Lua 5.1 ABI). LuaRocks passes a path
# (/usr/bin/lua5.4, /usr/bin/lua5.1) and its LUA_INCDIR; the headers decide.
LUA        ?= lua5.4
PKG_LUA    := $(if $(filter luajit lua5.1 lua51,$(notdir $(LUA))),luajit,$(notdir $(LUA)))
LUA_INCDIR ?= $(patsubst -I%,%,$(firstword $(shell pkg-config --cflags-only-I $(PKG_LUA) 2>/dev/null)))
LUA_ABI    := $(shell sed -n 's/^\#define LUA_VERSION_NUM[^0-9]*\([0-9]*\).*/\1/p' $(LUA_INCDIR)/lua.h 2>/dev/null)
# For the 5.1 ABI the core needs LuaJIT 2.1's headers (luaL_setfuncs,
# luaL_testudata): plain Lua 5.1 headers, LuaRocks' default, are swapped for
# luajit2's (pkg-config luajit); compat.h refuses any that still lack them.
LUAJIT_INCDIR := $(if $(filter 501,$(LUA_ABI)),$(if $(wildcard $(LUA_INCDIR)/luajit.h),$(LUA_INCDIR),\
                 $(patsubst -I%,%,$(firstword $(shell pkg-config --cflags-only-I luajit 2>/dev/null)))))
CORE_LUA_INCDIR := $(strip $(or $(LUAJIT_INCDIR),$(LUA_INCDIR)))
# One build directory per VM/ABI: build/lua5.4, build/luajit.
VM         := $(if $(filter 501,$(LUA_ABI)),luajit,$(if $(LUA_ABI),lua$(shell expr $(LUA_ABI) / 100).$(shell expr $(LUA_ABI) % 100),$(PKG_LUA)))
LUA_SHORT  := $(if $(filter 501,$(LUA_ABI)),5.1,$(patsubst lua%,%,$(VM)))
# libpq-fe.h: LuaRocks' PQ_INCDIR when it holds it, else pg_config's (Debian keeps it
# in /usr/include/postgresql).
PG_INCDIR  ?= $(if $(wildcard $(PQ_INCDIR)/libpq-fe.h),$(PQ_INCDIR),$(shell pg_config --includedir 2>/dev/null))
PG_LIBDIR  ?= $(shell pg_config --libdir 2>/dev/null)

CC         ?= cc
OPT        ?= -O2 -g
WARN       := -Wall -Wextra -Wshadow -Wpointer-arith -Wcast-qual -Wwrite-strings \
              -Wmissing-prototypes -Wstrict-prototypes -Wundef -Wformat=2 \
              -Wno-unused-parameter -Wdeclaration-after-statement
CFLAGS     ?= $(OPT)
ALL_CFLAGS  = -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden $(WARN) $(CFLAGS) \
              -I$(CORE_LUA_INCDIR) -I$(PG_INCDIR)
LDFLAGS    ?=
LIBS        = -L$(PG_LIBDIR) -lpq -lpthread

BUILD      := build/$(VM)
# Bottom up: each file calls only files before it (`make lint` checks it).
PURE_SRC   := csrc/strbuf.c csrc/array_literal.c csrc/bytea.c csrc/redact.c \
              csrc/json.c csrc/sql_split.c csrc/sqlstate.c csrc/copy_text.c \
              csrc/binary.c
PG_SRC     := csrc/conninfo.c csrc/pgtype.c csrc/session.c csrc/pool_core.c csrc/pool_registry.c
LUA_SRC    := csrc/auxlib.c csrc/error.c csrc/json_value.c csrc/params.c csrc/result.c \
              csrc/exec.c csrc/conn.c csrc/pool.c csrc/tx.c csrc/copy.c csrc/rows.c \
              csrc/pipeline.c csrc/notify.c csrc/module.c
OBJS       := $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(PURE_SRC) $(PG_SRC) $(LUA_SRC))
SO         := $(BUILD)/coderunner/pg.so

# LuaRocks passes these (the rock's own directories); the defaults install next
# to Debian's Lua. The migrations go inside the Lua tree, beside the modules
# (coderunner/migrations/), where coderunner.migrate looks for them.
INST_PREFIX ?= /usr/local
INST_LIBDIR ?= $(INST_PREFIX)/lib/lua/$(LUA_SHORT)
INST_LUADIR ?= $(INST_PREFIX)/share/lua/$(LUA_SHORT)
INST_BINDIR ?= $(INST_PREFIX)/bin

.PHONY: check-headers all build env docs test test-rocks test-c test-openresty spec spec-lua spec-luajit lint install clean deps \
        bench demo asan valgrind fuzz check-all migrate migrate-status migrate-create db-health

all: $(SO)
build: $(SO)

$(SO): $(OBJS) | check-headers
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJS) $(LDFLAGS) $(LIBS)

$(BUILD)/obj/%.o: csrc/%.c csrc/*.h | check-headers
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Says which headers are missing, before the compiler does.
check-headers:
	@test -f "$(CORE_LUA_INCDIR)/lua.h" || { echo "Makefile: no lua.h for LUA=$(LUA) (in '$(CORE_LUA_INCDIR)'): install liblua5.4-dev or libluajit2-5.1-dev, or pass LUA_INCDIR=" >&2; exit 1; }
	@test -f "$(PG_INCDIR)/libpq-fe.h" || { echo "Makefile: no libpq-fe.h (in '$(PG_INCDIR)'): install libpq-dev (pg_config --includedir), or pass PG_INCDIR=" >&2; exit 1; }

# Prints the exports that let this VM (and only it) require the modules from
# here: `eval "$(make env)"`, `eval "$(make env LUA=luajit)"`, or both. Lua 5.4
# reads LUA_PATH_5_4/LUA_CPATH_5_4 before LUA_PATH/LUA_CPATH, which LuaJIT reads;
# LuaJIT's exports keep lua5.4 on its own (default) cpath, off the LuaJIT build.
env:
ifeq ($(VM),luajit)
	@echo 'export LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;"'
	@echo 'export LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;"'
	@echo 'export LUA_CPATH_5_4="$${LUA_CPATH_5_4:-;;}"'
else
	@echo 'export LUA_PATH_$(subst .,_,$(LUA_SHORT))="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;"'
	@echo 'export LUA_CPATH_$(subst .,_,$(LUA_SHORT))="$(CURDIR)/$(BUILD)/?.so;;"'
endif

deps:
	@sh scripts/deps.sh

# ---- tests -----------------------------------------------------------------
# Pure-C helpers and the Lua-free pool, tested without Lua or a server.
TEST_C_BIN := build/test/unit
test-c: $(TEST_C_BIN)
	$(TEST_C_BIN)

$(TEST_C_BIN): test/c/*.c test/c/*.h $(PURE_SRC) $(PG_SRC) csrc/*.h
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L $(WARN) -O1 -g -fsanitize=address,undefined \
	  -fno-sanitize-recover=all -Icsrc -I$(PG_INCDIR) -o $@ test/c/*.c $(PURE_SRC) $(PG_SRC) \
	  -lm $(LIBS)

# A C program for a spec that needs a server: pg.cancel's token registry used
# from another OS thread (spec/pg_cancel_thread_spec.lua builds it with this).
CANCEL_THREAD := build/test/cancel_thread
$(CANCEL_THREAD): test/pg/cancel_thread.c $(PURE_SRC) $(PG_SRC) csrc/*.h
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L $(WARN) $(OPT) -Icsrc -I$(PG_INCDIR) -o $@ $< \
	  $(PURE_SRC) $(PG_SRC) -lm $(LIBS)

# Every spec, on both VMs, against a throwaway cluster made by pg_virtualenv;
# then the core's specs under ASan/UBSan (about half a minute) and each fuzzer
# for TEST_FUZZ_SECONDS (about 40 s for all).
TEST_FUZZ_SECONDS ?= 5
test: deps
	$(MAKE) build LUA=lua5.4
	$(MAKE) build LUA=luajit
	$(MAKE) test-c
	$(MAKE) lint
	pg_virtualenv -t sh scripts/run-specs.sh lua5.4 luajit
	$(MAKE) test-rocks
	$(MAKE) test-openresty
	$(MAKE) asan
	$(MAKE) fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)

# `luarocks make` into temporary Lua 5.4 and LuaJIT trees, then each tree used from
# another directory (require, a transaction, `coderunner-db migrate status`).
test-rocks:
	pg_virtualenv -t sh scripts/test-rocks.sh

# The OpenResty example in nginx, driven over HTTP under load, against a
# throwaway cluster (docs/openresty.md; scripts/test-openresty.sh).
test-openresty: deps
	$(MAKE) build LUA=luajit
	pg_virtualenv -t sh scripts/test-openresty.sh

# Specs against the server named by the PG* variables or DATABASE_URL you set.
spec: build
	sh scripts/run-specs.sh $(LUA)

# The object files' call graph must have no cycle and call down the build order (scripts/callgraph.py).
lint: build
	luacheck lua bin spec bench test/lua examples scripts
	lua5.4 scripts/gen-reference.lua --check docs/reference $(DOC_SRC)
	python3 scripts/callgraph.py --ordered $(OBJS)
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --std=c99 \
	  --suppress=missingIncludeSystem --suppress=toomanyconfigs -Icsrc -I$(LUA_INCDIR) -I$(PG_INCDIR) csrc

# API reference (docs/reference/*.md) from the LuaCATS annotations of the stub of
# the C module and of the Lua modules; `make lint` fails when it is out of date or
# a public function has no annotation.
DOC_SRC := types/coderunner/pg.lua $(sort $(wildcard lua/coderunner/*.lua lua/coderunner/*/*.lua))
docs:
	lua5.4 scripts/gen-reference.lua docs/reference $(DOC_SRC)

# ---- sanitizers, fuzzing ----------------------------------------------------------
SAN := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

# The core under AddressSanitizer + UBSan: the core's specs and the workout.
asan:
	@sh scripts/deps.sh --extra
	$(MAKE) build LUA=lua5.4 BUILD=build/asan CFLAGS="$(SAN)" LDFLAGS="-fsanitize=address,undefined"
	pg_virtualenv -t sh scripts/sanitize.sh asan

# The core under valgrind's memcheck: no invalid access, no definite leak.
valgrind:
	@sh scripts/deps.sh --extra
	$(MAKE) build LUA=lua5.4
	pg_virtualenv -t sh scripts/sanitize.sh valgrind

# libFuzzer on the pure-C helpers, FUZZ_SECONDS each.
FUZZ_SECONDS ?= 20
fuzz:
	@sh scripts/deps.sh --extra
	sh scripts/fuzz.sh $(FUZZ_SECONDS)

# ---- benchmarks -------------------------------------------------------------------
# The same workloads through raw libpq (C) and coderunner.pg, printed as ratios.
# Uses the server in the PG* environment or DATABASE_URL, else a throwaway cluster.
bench: deps
	$(MAKE) build LUA=lua5.4
	$(MAKE) build LUA=luajit
	@if [ -n "$${PGHOST:-}$${DATABASE_URL:-}" ]; then sh bench/run.sh; \
	else pg_virtualenv -t sh bench/run.sh; fi

# Everything: both VMs' specs, then the sanitizers.
check-all: test asan valgrind

# ---- install -----------------------------------------------------------------
install: $(SO)
	install -d $(DESTDIR)$(INST_LIBDIR)/coderunner $(DESTDIR)$(INST_LUADIR)/coderunner \
	  $(DESTDIR)$(INST_LUADIR)/coderunner/migrations $(DESTDIR)$(INST_BINDIR)
	install -m 755 $(SO) $(DESTDIR)$(INST_LIBDIR)/coderunner/pg.so
	cp -R lua/coderunner/. $(DESTDIR)$(INST_LUADIR)/coderunner/
	install -m 644 migrations/*.sql $(DESTDIR)$(INST_LUADIR)/coderunner/migrations/
	install -m 755 bin/coderunner-db $(DESTDIR)$(INST_BINDIR)/coderunner-db
	install -d $(DESTDIR)$(INST_LUADIR)/coderunner/examples
	install -m 644 examples/*.lua $(DESTDIR)$(INST_LUADIR)/coderunner/examples/

clean:
	rm -rf build

# ---- demo (issue 4) ----
# `make demo`: installs what it lacks, builds the core, and walks through the
# DatabaseService with `coderunner-db demo` (it applies the migrations first):
# against DATABASE_URL when it is set, else inside a throwaway cluster that
# pg_virtualenv creates and removes.
demo:
	@sh scripts/deps.sh
	$(MAKE) build LUA=lua5.4
	@if [ -n "$${DATABASE_URL:-}" ]; then \
	  lua5.4 bin/coderunner-db demo; \
	else \
	  echo "DATABASE_URL is not set: running the demo on a throwaway cluster (pg_virtualenv)"; \
	  pg_virtualenv -t lua5.4 bin/coderunner-db demo; \
	fi

# ---- migrations (issue 3) ----
# Shortcuts mirroring the original npm scripts. The connection comes from
# DATABASE_URL, DB_* or PG* (or pass CODERUNNER_DB_ARGS="--url ...").
CODERUNNER_DB ?= $(LUA) bin/coderunner-db $(CODERUNNER_DB_ARGS)

migrate: $(SO)
	$(CODERUNNER_DB) migrate up

migrate-status: $(SO)
	$(CODERUNNER_DB) migrate status

migrate-create: $(SO)
	@test -n "$(NAME)" || { echo "usage: make migrate-create NAME=what_it_does" >&2; exit 2; }
	$(CODERUNNER_DB) migrate create "$(NAME)"

db-health: $(SO)
	$(CODERUNNER_DB) health
