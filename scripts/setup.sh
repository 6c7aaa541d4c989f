#!/usr/bin/env bash
# One-command setup on a fresh Debian machine (root, Python 3.11): system packages for
# software rendering (and a C++ compiler, which torch.compile needs on a CPU; chromium for
# the dashboard's browser tests), a virtual
# environment, torch (CPU build) first, then the project.
# Idempotent: on a set-up machine it checks a stamp and finishes in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
STAMP="$VENV/.setup-stamp"

need_apt=()
for pkg in libosmesa6 libgl1; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
command -v g++ >/dev/null || need_apt+=(g++)
# The dashboard's browser tests drive Debian's chromium (Playwright never downloads one).
command -v chromium >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing system packages ${need_apt[*]}; install them as root (apt-get install ${need_apt[*]})" >&2
        exit 2
    fi
    echo "setup: installing ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

fingerprint=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$fingerprint" ]; then
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
LOG="$VENV/setup.log"
: > "$LOG"
pip() {
    # Quiet unless something fails; then the log's tail says why.
    if ! "$VENV/bin/python" -m pip --disable-pip-version-check "$@" >> "$LOG" 2>&1; then
        echo "setup: 'pip $*' failed; the end of $LOG:" >&2
        tail -n 30 "$LOG" >&2
        exit 1
    fi
}
echo "setup: installing Python packages into $VENV (log: $LOG)" >&2
pip install --upgrade pip
# torch first: the CPU build on this machine's disk; anything else would pull CUDA.
"$VENV/bin/python" -c "import torch" 2>/dev/null || pip install torch==2.13.0
pip install -e ".[dev]"
# pyrender pins PyOpenGL 3.1.0, which cannot use OSMesa; its other needs are in pyproject.
pip install --no-deps pyrender==0.1.45
"$VENV/bin/python" -c "import torch, transformers, peft, manifold3d, aiohttp, pyrender, ray"
echo "$fingerprint" > "$STAMP"
echo "setup: done" >&2
