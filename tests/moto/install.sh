#!/usr/bin/env bash
# Installs the AWS test server (moto: EC2, SSM, SQS, IAM, EventBridge) into a
# virtualenv that the tests find on their own, and prints its Python.
#
# Where: $DOVETAIL_MOTO_VENV, else ${XDG_CACHE_HOME:-$HOME/.cache}/dovetail/moto-venv
# (outside the checkout, so fresh clones and CI runs on the same machine reuse
# it). Re-runs are instant while tests/moto/requirements.txt is unchanged.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
requirements="$here/requirements.txt"
venv="${DOVETAIL_MOTO_VENV:-${XDG_CACHE_HOME:-${HOME:?set HOME or DOVETAIL_MOTO_VENV}/.cache}/dovetail/moto-venv}"
stamp="$venv/dovetail-requirements.txt"
python="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then
  echo "moto: up to date in $venv" >&2
else
  command -v "$python" >/dev/null || {
    echo "moto: $python not found: install Python 3.9+ with venv (Debian: apt-get install python3-venv)" >&2
    exit 1
  }
  echo "moto: installing into $venv" >&2
  mkdir -p "$(dirname "$venv")"
  # A fresh environment, so a changed pin never leaves an old package behind.
  "$python" -m venv --clear "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements" >&2
  # Written last: an interrupted install is redone on the next run.
  cp "$requirements" "$stamp"
fi

"$venv/bin/python" -c 'import moto.server, flask_cors' || {
  echo "moto: the environment in $venv is broken: delete it and run $0 again" >&2
  exit 1
}
echo "$venv/bin/python"
