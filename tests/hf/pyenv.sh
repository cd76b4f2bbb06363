#!/usr/bin/env bash
# pyenv.sh VENV — make (or reuse) the Python environment the Hugging Face
# interop tests run in: a virtual environment at VENV (under the build
# tree), with torch==2.13.0 installed FIRST and pinned (any other torch
# spec would fetch several GB of CUDA wheels), then transformers,
# safetensors, tokenizers, huggingface_hub and tqdm against that pin.
#
# Exit 0: VENV/bin/python has them all.  Exit 77 (ctest's "skipped"): the
# packages cannot be had because no package index can be reached; the
# reason is printed.  Any other failure exits 1 with pip's log.
# A finished environment is marked by VENV/.timber-ready and reused.
set -u
venv=$1
py=${TIMBER_PYTHON:-python3}
stamp="$venv/.timber-ready"
# What the tests import; bump the stamp's contents to force a rebuild.
want="torch==2.13.0 transformers safetensors tokenizers huggingface_hub tqdm"

say() { printf '[pyenv] %s\n' "$*" >&2; }

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
    "$venv/bin/python" -c 'import torch, transformers, safetensors, tokenizers, huggingface_hub' 2>/dev/null; then
    exit 0
fi

# One installer at a time (ctest may start several of our tests at once).
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi

rm -rf "$venv"
if ! "$py" -m venv "$venv" >"$venv.log" 2>&1; then
    cat "$venv.log" >&2
    say "error: '$py -m venv' failed (Debian: apt-get install python3-venv)"
    exit 1
fi
pip=("$venv/bin/python" -m pip install --no-input --progress-bar off)
# torch's pin, as a constraint for every later install too.
echo "torch==2.13.0" >"$venv/constraints.txt"
export PIP_CONSTRAINT="$venv/constraints.txt${PIP_CONSTRAINT:+ $PIP_CONSTRAINT}"

install() {
    say "pip install $*"
    if "${pip[@]}" "$@" >>"$venv.log" 2>&1; then
        return 0
    fi
    # Unreachable index: skip with the reason; anything else is a failure.
    if grep -qiE 'No matching distribution|Could not find a version|Network is unreachable|Temporary failure in name resolution|Failed to establish a new connection|ConnectTimeout|ReadTimeout|Max retries exceeded' "$venv.log"; then
        tail -n 5 "$venv.log" >&2
        say "SKIP: cannot install '$*': no package index reachable from here (see $venv.log)"
        rm -rf "$venv"
        exit 77
    fi
    tail -n 30 "$venv.log" >&2
    say "error: pip install $* failed (log: $venv.log)"
    exit 1
}

: >"$venv.log"
install torch==2.13.0
install transformers safetensors tokenizers huggingface_hub tqdm
"$venv/bin/python" - <<'PY' >&2
import torch, transformers, safetensors, tokenizers, huggingface_hub
print("[pyenv] torch", torch.__version__, "transformers", transformers.__version__,
      "safetensors", safetensors.__version__, "tokenizers", tokenizers.__version__,
      "huggingface_hub", huggingface_hub.__version__)
PY
echo "$want" >"$stamp"
