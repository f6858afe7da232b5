#!/usr/bin/env bash
# The interface's message catalogs (Flask-Babel): English source strings, Polish and Lithuanian.
#   scripts/translations.sh extract   # source -> portal/translations/messages.pot
#   scripts/translations.sh update    # extract, then merge new strings into pl and lt (.po)
#   scripts/translations.sh compile   # .po -> .mo (committed, so a clean clone and the wheel have them)
#   scripts/translations.sh check     # what tests/test_i18n.py checks: every string translated
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=".venv/bin/pybabel"
[ -x "$PYBABEL" ] || PYBABEL="pybabel"
DIR=portal/translations
POT="${POT:-$DIR/messages.pot}"  # the test extracts to a temporary file instead
LOCALES=(pl lt)

extract() {
  # No line numbers and sorted output: a catalog changes only when a string does.
  "$PYBABEL" -q extract -F babel.cfg -k _l -k lazy_gettext -k N_ --no-location --sort-output \
    --project "HPC allocation portal" --copyright-holder "HPC allocation portal contributors" \
    --msgid-bugs-address "allocations-office@localhost" -o "$POT" .
}

case "${1:-}" in
  extract) extract ;;
  update)
    extract
    for l in "${LOCALES[@]}"; do
      if [ -f "$DIR/$l/LC_MESSAGES/messages.po" ]; then
        "$PYBABEL" -q update -i "$POT" -d "$DIR" -l "$l" --no-fuzzy-matching --ignore-obsolete
      else
        "$PYBABEL" -q init -i "$POT" -d "$DIR" -l "$l"
      fi
    done ;;
  # wtforms: WTForms' own messages where WTForms ships no catalog (Lithuanian); see portal/i18n.py.
  compile) "$PYBABEL" compile -d "$DIR" -D "messages wtforms" --statistics ;;
  check) exec .venv/bin/python -m pytest -q tests/test_i18n.py -k catalog ;;
  *) echo "usage: $0 extract|update|compile|check" >&2; exit 2 ;;
esac
