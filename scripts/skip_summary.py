#!/usr/bin/env python3
"""One line saying which tests skipped and why, from ctest's JUnit report.

    ctest --test-dir build --output-junit ctest.xml ...; scripts/skip_summary.py build/ctest.xml

ctest itself only lists skipped tests as "did not run". This reads each
skipped test's own words (GTEST_SKIP's message, a script's "... skipped: why",
a unittest "skipped 'why'" inside a passing test) and groups them by cause:
"GPU absent", "data absent" (files that are not in this repository, such as
the original CLIP vocabulary and test image) or "other". Prints nothing when
nothing skipped. Standard library only (scripts/test.sh runs it).
"""
import re
import sys
import xml.etree.ElementTree as ET

GPU_WORDS = re.compile(r"\b(CUDA|GPU|sm_?90|NVML|nvidia)\b", re.I)
DATA_WORDS = re.compile(r"not (found|present)|no such file|missing", re.I)
# unittest -v: "test_x (module.Class.test_x) ... skipped 'why'" (or the docstring's first line before "...")
UNITTEST_SKIP = re.compile(r"^(.*?) \.\.\. skipped '(.*)'$", re.M)


def gtest_reason(output):
    """The message under gtest's 'file:line: Skipped' line, else the last line naming a skip."""
    lines = [line.strip() for line in output.splitlines()]
    for i, line in enumerate(lines):
        if line.endswith(": Skipped") and i + 1 < len(lines) and lines[i + 1]:
            return lines[i + 1]
    named = [line for line in lines if "skip" in line.lower() and not line.startswith("[  SKIPPED")]
    return named[-1] if named else "no reason printed"


def cause(reason):
    if GPU_WORDS.search(reason):
        return "GPU absent"
    if DATA_WORDS.search(reason):
        return "data absent"
    return "other"


def skipped(junit_path):
    """[(test name, reason)] for every skipped ctest test and unittest case."""
    out = []
    for case in ET.parse(junit_path).getroot().iter("testcase"):
        text = case.findtext("system-out") or ""
        if case.get("status") == "notrun" or case.find("skipped") is not None:
            out.append((case.get("name"), gtest_reason(text)))
        else:
            out += [(f"{case.get('name')}:{m.group(1)}", m.group(2)) for m in UNITTEST_SKIP.finditer(text)]
    return out


def summary(items):
    """'skipped 3: GPU absent 2 (CUDA: ...), data absent 1 (x not found)', or ''."""
    if not items:
        return ""
    groups = {}
    for name, reason in items:
        groups.setdefault(cause(reason), []).append(reason)
    parts = []
    for kind in ("GPU absent", "data absent", "other"):
        reasons = groups.get(kind)
        if reasons:
            distinct = list(dict.fromkeys(reasons))
            shown = "; ".join(r[:100] for r in distinct[:2]) + ("; ..." if len(distinct) > 2 else "")
            parts.append(f"{kind} {len(reasons)} ({shown})")
    return f"skipped {len(items)}: " + ", ".join(parts)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    line = summary(skipped(sys.argv[1]))
    if line:
        print(line)


if __name__ == "__main__":
    main()
