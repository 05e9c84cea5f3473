# Sourced by scripts/demo and scripts/test: makes .venv from nothing and installs caravan into it.
# EXTRAS selects optional dependency groups (for example "dev").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    echo "caravan: creating virtualenv in $venv" >&2
    python3 -m venv "$venv"
fi
spec="$root"
if [ -n "${EXTRAS:-}" ]; then spec="$root[$EXTRAS]"; fi
stamp="$venv/.installed-$(cat "$root/pyproject.toml" | sha256sum | cut -c1-16)-${EXTRAS:-none}"
if [ ! -e "$stamp" ]; then
    echo "caravan: installing dependencies (${EXTRAS:-runtime})" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e "$spec"
    touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
