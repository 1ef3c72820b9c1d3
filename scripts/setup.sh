#!/usr/bin/env bash
# One-command set-up: platform fix (only where needed), virtual environment, the TFX stack
# exactly as requirements.lock pins it (every package, version and hash; `make lock` refreshes it).
# Idempotent: a second run checks what is there and returns quickly.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
LOCK="$ROOT/requirements.lock"
UV_VERSION="0.13.9"          # the installer of the lock (Makefile's `make lock` uses the same)
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
GLIBC_NEEDED="2.38"          # tfx 1.21's ml-metadata / TFDV wheels are manylinux_2_39
GLIBCXX_NEEDED="GLIBCXX_3.4.32"

log() { printf '[setup] %s\n' "$*"; }

glibc_version() { getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}'; }
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }
libstdcxx_ok() {
  local lib
  lib="$(ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 /{print $NF; exit}')"
  [ -n "$lib" ] && grep -aq "$GLIBCXX_NEEDED" "$lib"
}

platform_fix() {
  local have; have="$(glibc_version)"
  if version_ge "$have" "$GLIBC_NEEDED" && libstdcxx_ok; then
    log "glibc $have and libstdc++ ($GLIBCXX_NEEDED) are new enough: no platform fix needed."
    return
  fi
  log "glibc $have < $GLIBC_NEEDED: TFX 1.21's ml-metadata/TFDV wheels need newer libc6/libstdc++6, installing them from Debian 13 (trixie, pinned low so nothing else moves)."
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  if ! grep -rqs "trixie" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian trixie main" | $SUDO tee /etc/apt/sources.list.d/trixie.list >/dev/null
  fi
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' | $SUDO tee /etc/apt/preferences.d/trixie-pin >/dev/null
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t trixie libc6 libstdc++6 >/dev/null
  log "now glibc $(glibc_version)."
}

imports_ok() {
  "$VENV/bin/python" -c "import tfx, tensorflow_transform, tensorflow_model_analysis, tensorflow_hub, tensorflow_serving" >/dev/null 2>&1
}
stack_ok() {  # installed from this very lock/pyproject.toml/setup.sh, and importable
  [ -x "$VENV/bin/python" ] && [ -f "$VENV/.setup-stamp" ] \
    && [ "$(cat "$VENV/.setup-stamp")" = "$(stamp)" ] && imports_ok
}
uv_pip() { "$VENV/bin/uv" pip "$1" --quiet --python "$VENV/bin/python" "${@:2}"; }
quiet_pip() { "$VENV/bin/pip" "$@" 2>&1 | grep -v "is ignored: it is neither a file" || true; }
project_ok() {  # the editable install points at this checkout (CI reuses one environment across clones)
  [ "$(cd / && "$VENV/bin/python" -c 'import pipeline, os; print(os.path.dirname(os.path.dirname(pipeline.__file__)))' 2>/dev/null)" = "$ROOT" ]
}
stamp() { cat "$ROOT/pyproject.toml" "$LOCK" "$ROOT/scripts/setup.sh" | sha256sum; }

main() {
  case "$(uname -s)" in Linux) platform_fix ;; esac
  if stack_ok; then
    if project_ok; then
      log "environment $VENV is intact; nothing to do."
    else
      log "environment $VENV is intact; pointing it at this checkout ($ROOT)."
      uv_pip install --no-deps -e "$ROOT"
    fi
    return
  fi
  log "creating $VENV and installing the locked stack from requirements.lock (first time: 1–2 min, mostly downloads)."
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  quiet_pip install -q --upgrade "pip>=24" wheel "uv==$UV_VERSION"
  # Exactly the lock: no resolver runs, so a fresh machine next month gets this very stack
  # (tensorflow-hub 0.16.1 included: the lock was resolved with requirements/overrides.txt).
  # uv downloads in parallel (pip one wheel at a time); the same command works with pip.
  uv_pip install --require-hashes --no-deps -r "$LOCK"
  uv_pip install --no-deps -e "$ROOT"
  "$VENV/bin/python" -c "import tfx, tensorflow as tf; print('[setup] tfx', tfx.__version__, 'tensorflow', tf.__version__)" 2>/dev/null
  imports_ok || { log "the environment does not import the stack; see the pip output above."; exit 1; }
  stamp > "$VENV/.setup-stamp"
  log "done. Activate with: source $VENV/bin/activate"
}
main "$@"
