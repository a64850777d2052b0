#!/usr/bin/env bash
# From a fresh clone to predictions in one command, headless: creates .venv, installs the
# package with the scikit-learn the quickstart trains with (no Docker, no cloud, no
# browser needed), then runs scripts/quickstart.py: train on scikit-learn's diabetes data,
# register, deploy locally, call the endpoint (printing its predictions), roll out v2,
# and clean up.
#   bash scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$py" -m venv .venv
.venv/bin/python -c "import mlmanage_jupyter, sklearn" 2>/dev/null \
  || .venv/bin/python -m pip install -q -e . scikit-learn
exec .venv/bin/python scripts/quickstart.py "$@"
