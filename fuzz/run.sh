#!/usr/bin/env bash
# Runs every fuzz target for the given number of seconds (default 60), one
# after another, on a copy of its seed corpus (fuzz/corpus/<target> is not
# modified; new inputs go to $WORK/corpus/<target>). Crashes land in
# fuzz/artifacts/<target>/. Summary lines go to $WORK/summary.txt.
set -u
secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/tmp/wisckey-fuzz}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-fuzz}
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
targets=${TARGETS:-"vlog_record value_pointer vlog_segment sstable block bloom footer manifest_edit manifest_file hint_file model"}
cd "$here"
cargo fuzz build -O --target-dir "$CARGO_TARGET_DIR/cargo-fuzz" || exit 1
mkdir -p "$WORK"
: > "$WORK/summary.txt"
for t in $targets; do
  mkdir -p "$WORK/corpus/$t"
  cp -n corpus/$t/* "$WORK/corpus/$t/" 2>/dev/null
  cargo fuzz run -O --target-dir "$CARGO_TARGET_DIR/cargo-fuzz" "$t" "$WORK/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
    > "$WORK/$t.log" 2>&1
  rc=$?
  line=$(grep -E '^(#[0-9]+\s+DONE|Done [0-9]+ runs)' "$WORK/$t.log" | tail -1)
  echo "$t rc=$rc $line" | tee -a "$WORK/summary.txt"
done
