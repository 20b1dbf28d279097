#!/usr/bin/env bash
# Builds the corpus that travels to the GPU machine (which has no network):
# .corpus/gpu-law.tar.xz, one xz file beside the repository (ignored by git),
# carried with run(carry=[".corpus", ...]) and unpacked there into
# .corpus/gpu-law/, a text folder that `sparsescale` tokenises with the
# committed BPE research/gpu-law/tokenizer.json.
#
# Content (text only, each file one document, renamed to .txt so the text
# reader takes it):
#   linux-doc/  Debian linux-doc-6.1 reST sources (html/_sources)  GPL-2.0
#   python/     the CPython 3.11 standard library's .py sources    PSF-2.0
#               (/usr/lib/python3.11, site/dist-packages left out: other licences)
# The two licence texts go into gpu-law-licences/ inside the archive, outside
# the corpus folder (so they are not trained on).
#
# Deterministic: sorted names, mtime 0, owner 0, so the same Debian packages
# give the same archive (and the same corpus cache key on both machines:
# the key hashes paths and bytes, not mtimes).
set -euo pipefail
cd "$(dirname "$0")/../.."
DOC=${DOC:-/usr/share/doc/linux-doc-6.1/html/_sources}
PYLIB=${PYLIB:-/usr/lib/python3.11}
OUTDIR=.corpus
STAGE=$OUTDIR/stage
for d in "$DOC" "$PYLIB"; do
    [ -d "$d" ] || { echo "make_corpus.sh: $d is missing (apt-get install linux-doc-6.1 python3.11)" >&2; exit 2; }
done
rm -rf "$STAGE"; mkdir -p "$STAGE/gpu-law/linux-doc" "$STAGE/gpu-law/python" "$STAGE/gpu-law-licences"
cp -r "$DOC/." "$STAGE/gpu-law/linux-doc/"
(cd "$PYLIB" && find . -name '*.py' -not -path './site-packages/*' -not -path './dist-packages/*' -print0) |
    while IFS= read -r -d '' f; do
        mkdir -p "$STAGE/gpu-law/python/$(dirname "$f")"
        cp "$PYLIB/$f" "$STAGE/gpu-law/python/$f.txt"
    done
cp /usr/share/doc/linux-doc-6.1/copyright "$STAGE/gpu-law-licences/linux-doc-6.1.copyright"
cp "$PYLIB/LICENSE.txt" "$STAGE/gpu-law-licences/python3.11-LICENSE.txt"
tar -C "$STAGE" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - gpu-law gpu-law-licences |
    xz -9 -T0 > "$OUTDIR/gpu-law.tar.xz.tmp"
mv "$OUTDIR/gpu-law.tar.xz.tmp" "$OUTDIR/gpu-law.tar.xz"
rm -rf "$OUTDIR/gpu-law"; mv "$STAGE/gpu-law" "$OUTDIR/gpu-law"; rm -rf "$STAGE"
echo "$(du -b "$OUTDIR/gpu-law.tar.xz" | cut -f1) bytes compressed, $(du -sb "$OUTDIR/gpu-law" | cut -f1) bytes of text, $(find "$OUTDIR/gpu-law" -type f | wc -l) files"
