#!/usr/bin/env bash
# The Python virtual environment of the gateway's compatibility tests (tests/gateway): the official
# `openai` client and pytest, pinned in tests/gateway/requirements.txt, installed from PyPI.
#
# Sourced (from scripts/test):
#     source scripts/lib/python.sh
#     python_venv_ensure     # exports COCOON_PYTHON (the venv's python); returns 1 when impossible
# Run directly (by hand):
#     scripts/lib/python.sh          # creates or refreshes the venv, prints the python path
#
# The venv lives at $COCOON_VENV (default $HOME/.cache/cocoon/venv) and is reinstalled only when
# requirements.txt differs from the one last installed successfully.

COCOON_VENV="${COCOON_VENV:-$HOME/.cache/cocoon/venv}"

python_venv_ensure() {
  local root req stamp py
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  req="$root/tests/gateway/requirements.txt"
  stamp="$COCOON_VENV/.cocoon-requirements"
  py="$COCOON_VENV/bin/python"
  if [ ! -x "$py" ]; then
    command -v python3 >/dev/null 2>&1 || { echo "python.sh: python3 is required" >&2; return 1; }
    # Debian's python3 needs python3-venv for `-m venv`; scripts/test can install it (ensure_apt).
    if ! python3 -m venv "$COCOON_VENV" 2>/dev/null; then
      rm -rf "$COCOON_VENV"
      if declare -F ensure_apt >/dev/null && ensure_apt python3-venv; then
        python3 -m venv "$COCOON_VENV" || { echo "python.sh: python3 -m venv failed" >&2; return 1; }
      else
        echo "python.sh: python3 -m venv failed (install python3-venv)" >&2
        return 1
      fi
    fi
  fi
  if [ ! -f "$stamp" ] || ! cmp -s "$req" "$stamp"; then
    "$py" -m pip install --quiet --disable-pip-version-check -r "$req" \
      || { echo "python.sh: pip install -r $req failed" >&2; return 1; }
    cp "$req" "$stamp"
  fi
  export COCOON_PYTHON="$py"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  python_venv_ensure
  echo "$COCOON_PYTHON"
fi
