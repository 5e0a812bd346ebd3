#!/usr/bin/env bash
# Checks the house rule for commit messages on the commits made since the
# rule began (SINCE below): a subject line under 72 characters, and, when
# there is more to say, a blank line and then the body.
#
#   scripts/check-commits.sh [REV]   # the commits of REV (default HEAD) since SINCE
set -euo pipefail
cd "$(dirname "$0")/.."
SINCE=2026-12-06T02:44:00Z  # when the rule began
rev=${1:-HEAD}
bad=0
while IFS= read -r c; do
  subject=$(git log -1 --format=%s "$c")
  second=$(git log -1 --format=%B "$c" | sed -n 2p)
  if ((${#subject} >= 72)); then
    echo "check-commits.sh: $c: subject has ${#subject} characters (under 72, please): $subject" >&2
    bad=1
  fi
  if [ -n "$second" ]; then
    echo "check-commits.sh: $c: the subject's next line must be blank" >&2
    bad=1
  fi
done < <(git rev-list --no-merges --since="$SINCE" "$rev")
((bad == 0)) && echo "check-commits.sh: commit messages of $rev since $SINCE follow the rule"
exit $bad
