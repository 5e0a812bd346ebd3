#!/usr/bin/env bash
# Checks that C++ and CUDA sources follow .clang-format (clang-format 14, as
# Debian bookworm ships it). CI runs it on every tracked source file, which
# covers the files any change touches; a developer can check only theirs.
#
#   scripts/check-format.sh              # every tracked C++/CUDA file (CI)
#   scripts/check-format.sh --changed    # files changed since HEAD (staged or not)
#   scripts/check-format.sh --fix [...]  # rewrite them in place instead
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0 changed=0
for a in "$@"; do
  case "$a" in
    --fix) fix=1 ;;
    --changed) changed=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "check-format.sh: unknown argument '$a'" >&2; exit 2 ;;
  esac
done
command -v clang-format >/dev/null || { echo "check-format.sh: clang-format is not installed (apt-get install clang-format)" >&2; exit 1; }
globs=('*.cpp' '*.h' '*.cu' '*.cuh')
if ((changed)); then
  mapfile -t files < <(git diff --name-only --diff-filter=d HEAD -- "${globs[@]}")
else
  mapfile -t files < <(git ls-files -- "${globs[@]}")
fi
((${#files[@]})) || { echo "check-format.sh: no C++ files to check"; exit 0; }
if ((fix)); then
  clang-format -i "${files[@]}"
  echo "check-format.sh: formatted ${#files[@]} files"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  echo "check-format.sh: ${#bad[@]} of ${#files[@]} files differ from .clang-format (scripts/check-format.sh --fix rewrites them):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check-format.sh: ${#files[@]} files follow .clang-format"
