# Sourced by bin/demo and bin/test: a virtualenv in .venv with the pinned requirements.
#
#   source bin/_venv.sh requirements.txt        # what the product needs (bin/demo)
#   source bin/_venv.sh requirements-dev.txt    # plus the test and lint tools (bin/test)
#
# One install stamp per requirements file: .venv/.requirements-<name>.sha holds the hash of that
# file and of every file it pulls in with -r / -c. pip runs only when the stamp of the file asked
# for is missing or stale, so `bin/demo` then `bin/test` installs the dev extras, and `bin/test`
# then `bin/demo` installs nothing (installing a file also stamps the files it includes).
set -euo pipefail
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi

_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi
}

# The file given, then every file it includes with -r/-c (recursively, each once), one absolute
# path per line. Include paths are relative to the including file, as pip reads them.
_requirement_files() {
  local file seen=${2:-} inc
  file="$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")"
  case "|$seen|" in *"|$file|"*) return 0 ;; esac
  echo "$file"
  seen="$seen|$file"
  sed -nE 's/^[[:space:]]*(-r|-c|--requirement|--constraint)[[:space:]=]+([^[:space:]#]+).*/\2/p' "$file" |
    while IFS= read -r inc; do
      case $inc in /*) ;; *) inc="$(dirname "$file")/$inc" ;; esac
      _requirement_files "$inc" "$seen"
    done
}

# Name and content of each of those files: independent of where the checkout lives.
_requirements_hash() {
  local file
  _requirement_files "$1" | sort -u | while IFS= read -r file; do
    printf '== %s\n' "$(basename "$file")"
    cat "$file"
  done | _sha256 | cut -d' ' -f1
}

_requirements_stamp() {
  local name
  name=$(basename "$1")
  echo ".venv/.requirements-${name%.txt}.sha"
}

_requirements=${1:-requirements.txt}
if [ "$(cat "$(_requirements_stamp "$_requirements")" 2>/dev/null)" != "$(_requirements_hash "$_requirements")" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$_requirements"
  # Everything the file includes is installed now too: stamp it, so asking for it later is free.
  _requirement_files "$_requirements" | while IFS= read -r _file; do
    _requirements_hash "$_file" > "$(_requirements_stamp "$_file")"
  done
  rm -f .venv/.requirements.sha  # the single stamp of earlier versions
fi
mkdir -p var
