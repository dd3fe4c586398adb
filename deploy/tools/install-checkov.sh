#!/usr/bin/env bash
# Install checkov (the policy scanner tests/deploy runs) in its own virtualenv,
# .parcours/tools/checkov: its pins conflict with constraints.txt (packaging<24).
# Idempotent: does nothing when the installed set already matches the requirements file.
#   deploy/tools/install-checkov.sh            # then: .parcours/tools/checkov/bin/checkov
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3.11}"
VENV=.parcours/tools/checkov
REQS=deploy/tools/checkov-requirements.txt
STAMP="$VENV/.requirements"

if [ -x "$VENV/bin/checkov" ] && [ -f "$STAMP" ] && cmp -s "$REQS" "$STAMP"; then
  exit 0
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS"
cp "$REQS" "$STAMP"
"$VENV/bin/checkov" --version
