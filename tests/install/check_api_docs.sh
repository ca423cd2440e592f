#!/usr/bin/env bash
# Keeps docs/api.md and examples/api_tour/main.cpp in sync (the program is compiled and run by the
# install test, so the code in the guide is known to work):
#
#   check_api_docs.sh DOCS_MD SOURCE_CPP
#
# In the source, a region runs from a line "// [tour:NAME]" to the next "// [/tour]". In the docs,
# a ```cpp block right after a line "<!-- tour:NAME -->" shows it. Every region must be shown, and
# every ```cpp block must be a region, character for character (less the region's common
# indentation). On a mismatch it prints the diff and fails.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: check_api_docs.sh DOCS_MD SOURCE_CPP" >&2
  exit 2
fi
docs=$1 source=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src" "$tmp/doc"

# Source regions, dedented, one file per name.
awk -v dir="$tmp/src" '
  function flush(   i, out, min, ind) {
    min = -1
    for (i = 1; i <= n; i++) if (lines[i] ~ /[^ ]/) {
      match(lines[i], /^ */); ind = RLENGTH
      if (min < 0 || ind < min) min = ind
    }
    if (min < 0) min = 0
    out = dir "/" name
    printf "" > out
    for (i = 1; i <= n; i++) print substr(lines[i], min + 1) > out
    close(out)
  }
  /^[ ]*\/\/ \[\/tour\][ ]*$/ { if (name == "") { print "stray [/tour] at line " NR > "/dev/stderr"; exit 1 }
                                flush(); name = ""; next }
  /^[ ]*\/\/ \[tour:[a-z0-9-]+\][ ]*$/ {
    if (name != "") { print "region " name " is not closed before line " NR > "/dev/stderr"; exit 1 }
    name = $0; sub(/^[ ]*\/\/ \[tour:/, "", name); sub(/\].*$/, "", name); n = 0; next }
  name != "" { lines[++n] = $0 }
  END { if (name != "") { print "region " name " is not closed" > "/dev/stderr"; exit 1 } }
' "$source"

# Doc blocks: a ```cpp fence right after <!-- tour:NAME --> (blank lines allowed between them).
awk -v dir="$tmp/doc" -v unnamed="$tmp/unnamed" '
  /^<!-- tour:[a-z0-9-]+ -->[ ]*$/ { pending = $0; sub(/^<!-- tour:/, "", pending); sub(/ -->.*$/, "", pending); next }
  /^```cpp[ ]*$/ && !inside {
    inside = 1
    if (pending == "") { print "line " NR > unnamed; name = "" } else { name = pending; out = dir "/" name; printf "" > out }
    pending = ""; next }
  /^```[ ]*$/ && inside { inside = 0; if (name != "") close(out); next }
  inside { if (name != "") print > out; next }
  /[^ ]/ { pending = "" }
' "$docs"

status=0
if [[ -s $tmp/unnamed ]]; then
  echo "$docs: a \`\`\`cpp block without a <!-- tour:NAME --> line before it, at $(tr '\n' ' ' <"$tmp/unnamed")" >&2
  status=1
fi
for region in "$tmp"/src/*; do
  name=$(basename "$region")
  if [[ ! -f $tmp/doc/$name ]]; then
    echo "$docs does not show the region [tour:$name] of $source" >&2
    status=1
  elif ! diff -u --label "$source [tour:$name]" --label "$docs <!-- tour:$name -->" "$region" "$tmp/doc/$name" >&2; then
    echo "$docs and $source differ in [tour:$name]: copy the region into the docs" >&2
    status=1
  fi
done
for block in "$tmp"/doc/*; do
  [[ -e $block ]] || continue
  name=$(basename "$block")
  [[ -f $tmp/src/$name ]] || { echo "$docs shows tour:$name, which $source does not have" >&2; status=1; }
done
[[ $status -eq 0 ]] && echo "docs/api.md shows $(ls "$tmp/src" | wc -l) regions of $source, all in sync"
exit $status
