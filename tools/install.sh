#!/usr/bin/env bash
# Install recsearch and its pinned TorchRec stack into a virtual environment.
#
#   bash tools/install.sh [--cpu|--cuda] [--venv DIR] [--no-dev]
#
# The stack: torch 2.13.0, fbgemm-gpu(-cpu) 1.8.0, torchrec 1.8.0 (torchrec 1.X goes with
# fbgemm 1.X and torch 2.(X+5)). torchrec declares a dependency on the CUDA `fbgemm-gpu`
# wheel, which would overwrite fbgemm-gpu-cpu's files, so torchrec goes in with --no-deps
# and its other requirements come from requirements.txt. --cuda (or an nvidia-smi that
# sees a GPU, when neither flag is given) takes fbgemm-gpu==1.8.0 instead of fbgemm-gpu-cpu.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
flavor=""
dev=1
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) flavor=cpu ;;
    --cuda) flavor=cuda ;;
    --venv) venv="$2"; shift ;;
    --no-dev) dev=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$flavor" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then flavor=cuda; else flavor=cpu; fi
fi
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
echo "installing the $flavor stack into $venv"
if [ "$flavor" = cuda ]; then
  "${pip[@]}" torch==2.13.0 fbgemm-gpu==1.8.0
else
  "${pip[@]}" torch==2.13.0 fbgemm-gpu-cpu==1.8.0
fi
"${pip[@]}" -r requirements.txt
"${pip[@]}" --no-deps torchrec==1.8.0
"${pip[@]}" --no-deps -e .
if [ "$dev" = 1 ]; then
  "${pip[@]}" -r requirements-dev.txt
fi
"$venv/bin/python" -c "import torch, fbgemm_gpu, torchrec; print('stack ok: torch', torch.__version__)"
