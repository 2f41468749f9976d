#!/usr/bin/env bash
# Set-up and entry points of the collection. Every command first makes sure the environment
# exists: a virtual environment in .venv (or $VENV) with requirements.txt, detectron2
# (tools/install_detectron2.py) and this repo installed editable. It is redone only when
# requirements.txt, setup.py or the detectron2 installer change, so later calls are fast.
#
#   ./run.sh dap [ARGS]       the main job: the whole DAP workflow on the synthetic data (~10 min)
#   ./run.sh smoke            train + evaluate the smoke config on the embedded synthetic data
#   ./run.sh test [ARGS]      run the test suite (pytest ARGS)
#   ./run.sh train ARGS       python train_net.py ARGS
#   ./run.sh python ARGS      python of the environment
#   ./run.sh setup            only the set-up
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}

find_python() {
  for candidate in python3.11 python3.12 python3.10 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
      echo "$candidate"; return
    fi
  done
  echo "run.sh: Python >= 3.10 is needed" >&2; exit 1
}

setup() {
  local stamp
  stamp=$(cat requirements.txt setup.py tools/install_detectron2.py | sha256sum | cut -d' ' -f1)
  if [ -f "$VENV/.setup-stamp" ] && [ "$(cat "$VENV/.setup-stamp")" = "$stamp" ]; then
    return
  fi
  echo "run.sh: setting up $VENV (torch alone is ~5 GB; a few minutes the first time)" >&2
  local start=$SECONDS
  [ -x "$VENV/bin/python" ] || "$(find_python)" -m venv "$VENV"
  # the plain OpenCV wheels own the same cv2 package as the contrib wheel of requirements.txt
  "$VENV/bin/python" -m pip uninstall --quiet --yes opencv-python opencv-python-headless 2>/dev/null || true
  "$VENV/bin/python" -m pip install --quiet -r requirements.txt
  "$VENV/bin/python" tools/install_detectron2.py
  "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
  echo "$stamp" > "$VENV/.setup-stamp"
  echo "run.sh: set-up done in $((SECONDS - start)) s" >&2
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  setup) setup ;;
  dap) setup; exec "$VENV/bin/python" -m dap.workflow "$@" ;;
  smoke) setup; exec "$VENV/bin/python" train_net.py --config-file configs/smoke/faster_rcnn_R18_FPN_synthetic.py "$@" ;;
  test) setup; exec "$VENV/bin/python" -m pytest "$@" ;;
  train) setup; exec "$VENV/bin/python" train_net.py "$@" ;;
  python) setup; exec "$VENV/bin/python" "$@" ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
