#!/usr/bin/env bash
# Sets up netdef from this checkout on Debian/Ubuntu with Python 3.10+ (PEP 668 systems too).
#
#   bash setup.sh          the tool: .venv/bin/netdef
#   bash setup.sh --test   the tool and what the test suite needs: .venv/bin/python -m pytest -q
#
# It installs into the active virtual environment when there is one (and links it as .venv),
# else into ./.venv, which it creates. System packages (graphviz for `dot`; python3-venv when
# Python cannot make a virtual environment) are installed with apt-get when missing: directly as
# root, with `sudo -n` when that needs no password, and otherwise the one command to run is
# printed. Running it again is safe: it reuses what is there.
set -euo pipefail
cd "$(dirname "$0")"

TEST=0
for arg in "$@"; do
  case "$arg" in
    --test) TEST=1 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (allowed: --test)" >&2; exit 2 ;;
  esac
done

say() { echo "setup: $*" >&2; }

PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
  say "no '$PY' found; install Python 3.10 or newer (sudo apt-get install python3)"; exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  say "netdef needs Python 3.10 or newer; '$PY' is $("$PY" -V 2>&1)"; exit 1
fi

# apt_install PKG...: install Debian packages if we can do so without asking; else print the
# command and return 1.
apt_install() {
  local cmd="apt-get install -y $*"
  if [ "$(id -u)" = 0 ]; then
    say "installing $* with: $cmd"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null && return 0
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    say "installing $* with: sudo $cmd"
    sudo -n apt-get update -qq >/dev/null && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null && return 0
  fi
  say "could not install $* here; run this, then run setup.sh again:"
  echo "    sudo $cmd" >&2
  return 1
}

# --- the virtual environment -----------------------------------------------------------------
if "$PY" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
  VENV=$("$PY" -c 'import sys; print(sys.prefix)')
  say "using the active virtual environment $VENV"
  if [ ! -e .venv ]; then ln -s "$VENV" .venv; say "linked it as .venv"; fi
else
  VENV="$PWD/.venv"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating a virtual environment in .venv"
    rm -rf "$VENV"
    if ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
      rm -rf "$VENV"
      ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      say "Python cannot create a virtual environment here (Debian splits venv out)"
      apt_install "python${ver}-venv" || exit 1
      "$PY" -m venv "$VENV"
    fi
  fi
fi
VPY="$VENV/bin/python"

# --- graphviz's dot (netdef draw; the test suite) --------------------------------------------
if ! command -v dot >/dev/null 2>&1; then
  say "graphviz's 'dot' is missing (netdef draw needs it)"
  apt_install graphviz || true
  if ! command -v dot >/dev/null 2>&1; then
    [ "$TEST" = 1 ] && { say "the test suite needs 'dot'; stopping"; exit 1; }
    say "continuing without it: every command but 'draw' works"
  fi
fi

# --- chromium (the test suite: tests/test_view_browser.py) ------------------------------------
# netdef view's browser tests drive Debian's chromium through Playwright (pip, the test extra);
# Playwright's own browser download is not used. Installed with --test, only when missing.
if [ "$TEST" = 1 ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  say "chromium is missing (the browser tests of netdef view need it)"
  apt_install chromium || exit 1
fi

# --- the package -----------------------------------------------------------------------------
extra=""
[ "$TEST" = 1 ] && extra="[test]"
say "installing netdef${extra} into $VENV"
# A failed install must fail the setup (no filter that could hide pip's exit status).
"$VPY" -m pip install -q --disable-pip-version-check -e ".${extra}"
"$VPY" -c "import netdef, netdef.parse, onnxruntime, graphviz"
say "done: $VENV/bin/netdef"
