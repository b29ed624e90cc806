# The GPU bundle's environment file (bundle.env): written by scripts/gpu-bundle, read by
# scripts/gpu-check, sourced by both (and by tests/setup/bundle_env_test.sh).
# One `key=value` a line, the value taken literally to the end of the line: nothing in it
# is ever evaluated, so a CPU name with spaces, quotes or `$` reads back as it was
# written. A newline in a value is written as a space.

# bundle_env_line KEY VALUE: prints one line of bundle.env.
bundle_env_line() {
  local value=${2//$'\n'/ }
  printf '%s=%s\n' "$1" "$value"
}

# read_bundle_env FILE KEY...: sets each KEY (a shell variable) to its value in FILE;
# fails naming the first KEY the file lacks.
read_bundle_env() {
  local file=$1 line key want
  shift
  for want in "$@"; do
    local found=0
    while IFS= read -r line || [ -n "$line" ]; do
      key=${line%%=*}
      if [ "$key" = "$want" ] && [ "$line" != "$key" ]; then
        printf -v "$want" '%s' "${line#*=}"
        found=1
      fi
    done < "$file"
    [ "$found" = 1 ] || { echo "read_bundle_env: $file has no '$want'" >&2; return 1; }
  done
}
