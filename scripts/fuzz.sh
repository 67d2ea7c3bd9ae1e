#!/bin/sh
# Builds the libFuzzer targets in fuzz/ (against the pure-C helpers in csrc/) and
# runs each for $1 seconds (default 20). Needs clang and libclang-rt-14-dev.
#   sh scripts/fuzz.sh 60           every target, a minute each
#   TARGETS="fuzz_json" sh scripts/fuzz.sh 300
# Found inputs go to build/fuzz/corpus/<target>/ (kept between runs), crashes to
# build/fuzz/<target>-crash-*; seeds and dictionaries live in fuzz/.
set -eu
cd "$(dirname "$0")/.."

secs=${1:-20}
cc=${FUZZ_CC:-clang}
out=build/fuzz
pure="csrc/strbuf.c csrc/array_literal.c csrc/bytea.c csrc/redact.c csrc/json.c csrc/sql_split.c csrc/copy_text.c csrc/binary.c"
targets=${TARGETS:-$(for f in fuzz/fuzz_*.c; do basename "$f" .c; done)}

command -v "$cc" >/dev/null 2>&1 || {
  echo "fuzz.sh: $cc not found (apt-get install -y clang libclang-rt-14-dev)" >&2
  exit 1
}
mkdir -p "$out"
status=0
for t in $targets; do
  echo "== $t: building"
  # shellcheck disable=SC2086
  "$cc" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Icsrc \
    -o "$out/$t" "fuzz/$t.c" $pure -lm
  mkdir -p "$out/corpus/$t"
  set -- -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/$t-"
  [ -f "fuzz/$t.dict" ] && set -- "$@" -dict="fuzz/$t.dict"
  set -- "$@" "$out/corpus/$t"
  [ -d "fuzz/seeds/$t" ] && set -- "$@" "fuzz/seeds/$t"
  echo "== $t: running for ${secs}s"
  if ! "$out/$t" "$@" 2>"$out/$t.log"; then
    status=1
    echo "== $t: FAILED (see $out/$t.log)"
    tail -n 40 "$out/$t.log"
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done ' "$out/$t.log" || true
done
exit $status
