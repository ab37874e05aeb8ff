# Shared by scripts/test, scripts/demo and friends. Source it; it sets the environment and helpers.
set -euo pipefail
COCOON_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$COCOON_ROOT"
# Builds of burn/wgpu are slow on small machines: keep the target dir and caches outside the clone.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cocoon/target}"
export npm_config_cache="${npm_config_cache:-$HOME/.cache/cocoon/npm}"
export COCOON_MODELS_DIR="${COCOON_MODELS_DIR:-$HOME/.cache/cocoon/models}"
# wgpu on Mesa lavapipe wants a writable runtime dir.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/cocoon-xdg-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# Installs Debian packages that are missing, when we can (root or passwordless sudo).
ensure_apt() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! sudo -n true 2>/dev/null; then
      echo "missing Debian packages: ${missing[*]} (install them: sudo apt-get install ${missing[*]})" >&2
      return 1
    fi
    sudo="sudo -n"
  fi
  step "installing ${missing[*]}"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_npm() {
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    step "npm ci"
    npm ci --no-audit --no-fund --prefer-offline
  fi
}
