#!/usr/bin/env bash
# Python virtual environments, installed from PyPI with pinned requirements:
# - the gateway's compatibility tests (tests/gateway): the official `openai` client and pytest,
#   tests/gateway/requirements.txt, at $COCOON_VENV (default $HOME/.cache/cocoon/venv);
# - the worker's independent reference (scripts/reference: numpy, gguf, tokenizers),
#   scripts/reference/requirements.txt, at $COCOON_REFERENCE_VENV
#   (default $HOME/.cache/cocoon/venv-reference).
#
# Sourced (from scripts/test):
#     source scripts/lib/python.sh
#     python_venv_ensure     # exports COCOON_PYTHON (the gateway venv's python); 1 when impossible
#     reference_venv_ensure  # exports COCOON_REFERENCE_PYTHON; 1 when impossible
# Run directly (by hand):
#     scripts/lib/python.sh              # creates or refreshes the gateway venv, prints its python
#     scripts/lib/python.sh reference    # the same for the reference venv
#
# A venv is reinstalled only when its requirements file differs from the one last installed
# successfully.

COCOON_VENV="${COCOON_VENV:-$HOME/.cache/cocoon/venv}"
COCOON_REFERENCE_VENV="${COCOON_REFERENCE_VENV:-$HOME/.cache/cocoon/venv-reference}"

python_venv_ensure() {
  local py
  py="$(venv_ensure "$COCOON_VENV" tests/gateway/requirements.txt)" || return 1
  export COCOON_PYTHON="$py"
}

reference_venv_ensure() {
  local py
  py="$(venv_ensure "$COCOON_REFERENCE_VENV" scripts/reference/requirements.txt)" || return 1
  export COCOON_REFERENCE_PYTHON="$py"
}

# venv_ensure DIR REQUIREMENTS (relative to the checkout): prints the venv's python and nothing
# else on stdout. Run it in a command substitution (it sends its other output to stderr).
venv_ensure() {
  local venv="$1" root req stamp py
  exec 3>&1 1>&2
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  req="$root/$2"
  stamp="$venv/.cocoon-requirements"
  py="$venv/bin/python"
  if [ ! -x "$py" ]; then
    command -v python3 >/dev/null 2>&1 || { echo "python.sh: python3 is required" >&2; return 1; }
    # Debian's python3 needs python3-venv for `-m venv`; scripts/test can install it (ensure_apt).
    if ! python3 -m venv "$venv" 2>/dev/null; then
      rm -rf "$venv"
      if declare -F ensure_apt >/dev/null && ensure_apt python3-venv; then
        python3 -m venv "$venv" || { echo "python.sh: python3 -m venv failed" >&2; return 1; }
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
  echo "$py" >&3
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  if [ "${1:-}" = reference ]; then
    reference_venv_ensure
    echo "$COCOON_REFERENCE_PYTHON"
  else
    python_venv_ensure
    echo "$COCOON_PYTHON"
  fi
fi
