#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml: every transitive dependency pinned, with hashes.
#   requirements/runtime.txt   what the app needs to serve (make run, the Dockerfile)
#   requirements/dev.txt       the runtime set plus the test and lint tools (make test), the same
#                              versions as the runtime set (constrained by it)
# uv (from PyPI) runs from its own venv (.venv-lock); the installs themselves use plain pip.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.8
if [ ! -x .venv-lock/bin/uv ] || ! .venv-lock/bin/uv --version | grep -q " $UV_VERSION"; then
  python3 -m venv .venv-lock
  .venv-lock/bin/pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
uv=.venv-lock/bin/uv
$uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q \
  -o requirements/runtime.txt
$uv pip compile pyproject.toml --extra dev -c requirements/runtime.txt --python-version 3.11 \
  --generate-hashes -q -o requirements/dev.txt
echo "lock: requirements/runtime.txt ($(grep -c '^[a-z0-9]' requirements/runtime.txt) packages), requirements/dev.txt ($(grep -c '^[a-z0-9]' requirements/dev.txt))" >&2
