#!/usr/bin/env bash
# The GPU bundle's environment file reads back exactly what was written, for any value:
# spaces, quotes, `$`, backticks, command substitutions, `=`, backslashes; and reading it
# runs nothing (scripts/bundle-env.sh; the bundle once wrote `cpu_model=AMD EPYC` for the
# shell to source, which died with "EPYC: command not found").
#   bundle_env_test.sh SOURCE_DIR
set -euo pipefail
source_dir=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=../../scripts/bundle-env.sh
. "$source_dir/scripts/bundle-env.sh"

values=(
  'AMD EPYC 9654 96-Core Processor'
  "Intel(R) Xeon(R) \"Platinum\" 8480+ 'quoted'"
  '$HOME ${PATH} $(touch '"$work"'/ran) `touch '"$work"'/ran`; touch '"$work"'/ran'
  'a=b=c \ back\\slash	tab  two  spaces '
  ''
)
{
  for i in "${!values[@]}"; do bundle_env_line "value_$i" "${values[$i]}"; done
  bundle_env_line with_newline $'first\nsecond'
} > "$work/bundle.env"

keys=()
for i in "${!values[@]}"; do keys+=("value_$i"); done
read_bundle_env "$work/bundle.env" "${keys[@]}" with_newline
bad=0
for i in "${!values[@]}"; do
  key="value_$i"
  if [ "${!key}" != "${values[$i]}" ]; then
    echo "bundle_env_test: $key read back as [${!key}], written as [${values[$i]}]"
    bad=1
  fi
done
[ "$with_newline" = "first second" ] || { echo "bundle_env_test: a newline reads back as [$with_newline]"; bad=1; }
[ ! -e "$work/ran" ] || { echo "bundle_env_test: reading the file ran a command"; bad=1; }
if read_bundle_env "$work/bundle.env" missing_key 2> "$work/err"; then
  echo "bundle_env_test: a missing key was not refused"
  bad=1
fi
grep -q "has no 'missing_key'" "$work/err" || { echo "bundle_env_test: the refusal does not name the key"; bad=1; }
[ "$bad" = 0 ] && echo "bundle_env_test: ${#values[@]} values and a newline read back as written; nothing ran"
exit "$bad"
