#!/usr/bin/env bash
# Puts NVIDIA CUTLASS's C++ headers (BSD-3-Clause) in .deps/cutlass/include,
# where the CUDA build looks for them (CLIPFIND_CUTLASS_INCLUDE). They come
# from the nvidia-cutlass wheel on PyPI (Debian has no CUTLASS package); a
# wheel already in .deps/ is used as is, which is how the GPU machine, with
# no network, gets them (carry .deps; scripts/gpu/gpu_build.sh runs this).
# Without the headers the build still works, with cuBLASLt alone.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=4.2.0.0
WHEEL=.deps/nvidia_cutlass-$VERSION-py3-none-any.whl
DEST=.deps/cutlass
[ -f "$DEST/include/cutlass/cutlass.h" ] && [ "$(cat "$DEST/VERSION" 2>/dev/null)" = "$VERSION" ] && exit 0
mkdir -p .deps
if [ ! -f "$WHEEL" ]; then
  echo "fetching CUTLASS $VERSION headers (PyPI nvidia-cutlass)"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps "nvidia-cutlass==$VERSION" -d .deps
fi
rm -rf "$DEST.tmp"
python3 - "$WHEEL" "$DEST.tmp" <<'PY'
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "cutlass_library/source/include/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith("/"):
            continue
        if name.startswith(prefix):
            out = os.path.join(dest, "include", name[len(prefix):])
        elif name.endswith("/licenses/LICENSE.txt"):
            out = os.path.join(dest, "LICENSE.txt")
        else:
            continue
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(z.read(name))
PY
echo "$VERSION" >"$DEST.tmp/VERSION"
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
