#!/usr/bin/env bash
# Rebuild configs/requirements.lock: every package the tests run with, at an exact version.
# Run it on purpose (to take newer releases), then run the test suite on the new lock and commit
# both together. It resolves pyproject.toml's loose ranges in a fresh venv, with torch held at
# the version named below, and freezes the result. `configs/relock.sh --keep` keeps every pin the
# lock has and resolves only what is new (a package added to pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH="${TORCH:-torch==2.13.0}"
venv="$(mktemp -d)/venv"
python3 -m venv "$venv"
EXTRAS="dev,http,trackers,lora"  # what the README's test command installs
keep=()
if [[ "${1:-}" == "--keep" ]]; then
  keep=(-c configs/requirements.lock)
fi
"$venv/bin/pip" install -q "${keep[@]}" "$TORCH" -e ".[$EXTRAS]"
{
  echo "# Every package of a tested install, at exact versions; made by configs/relock.sh."
  echo "# Used as a constraints file (-c): it pins what is installed and adds nothing. torch is"
  echo "# named without a build tag, so the platform's own build of that version is taken."
  "$venv/bin/pip" freeze --exclude-editable | sed -E 's/^(torch==[^+]+)\+.*/\1/'
} > configs/requirements.lock
rm -rf "$(dirname "$venv")"
echo "wrote configs/requirements.lock; now run the tests on it"
