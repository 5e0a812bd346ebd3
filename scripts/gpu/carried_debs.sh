# shellcheck shell=bash
# Sourced by the device-machine scripts: unpacks the Debian packages carried
# in .debs/ (utf8proc, SentencePiece, oneDNN and the OpenCL loader it links, which the GPU
# machine lacks) into /tmp/debroot and points pkg-config, CMake and the
# loader at them. Unpacking into / could break that machine's own packages.
DEB=/tmp/debroot
if ls .debs/*.deb >/dev/null 2>&1; then
  # Once per machine: a second script sourcing this while a build reads the
  # unpacked headers must not rewrite them under it.
  if [ ! -f $DEB/.unpacked ]; then
    mkdir -p $DEB
    for f in .debs/*.deb; do dpkg -x "$f" $DEB; done
    # Debian's .pc files say prefix=/usr; point them at the unpacked tree.
    sed -i "s|^prefix=/usr\$|prefix=$DEB/usr|" $DEB/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc 2>/dev/null
    touch $DEB/.unpacked
  fi
  export PKG_CONFIG_PATH=$DEB/usr/lib/x86_64-linux-gnu/pkgconfig:$DEB/usr/share/pkgconfig:${PKG_CONFIG_PATH:-}
  export LD_LIBRARY_PATH=$DEB/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
  export CMAKE_PREFIX_PATH=$DEB/usr:${CMAKE_PREFIX_PATH:-}
fi
