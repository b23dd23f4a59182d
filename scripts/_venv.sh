# Sourced by scripts/run and scripts/test: make .venv exist and match pyproject.toml.
# Reinstalls only when pyproject.toml (or the requested extras) changed, so both
# scripts stay fast and idempotent.
ensure_venv() {
    local extras="$1"
    local py="${PYTHON:-python3}"
    if [ ! -x .venv/bin/python ]; then
        echo "creating .venv" >&2
        "$py" -m venv .venv
    fi
    local stamp=".venv/.trust-installed${extras:+-$extras}"
    local want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "installing dependencies into .venv" >&2
        .venv/bin/python -m pip install -q --upgrade pip >&2
        .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}" >&2
        echo "$want" > "$stamp"
    fi
}
