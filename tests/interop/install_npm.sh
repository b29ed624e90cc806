# Sourced by the interop tests: installs npm packages into a folder of the build once, like
# any other set-up step, and points NODE_PATH at it.
#   install_npm DIR PACKAGE@VERSION... [-- NPM_OPTION...]   (installs when any is missing)
install_npm() {
  local dir=$1
  shift
  local packages=() options=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do packages+=("$1"); shift; done
  [ $# -gt 0 ] && shift && options=("$@")
  local missing=0 p
  for p in "${packages[@]}"; do [ -d "$dir/node_modules/${p%@*}" ] || missing=1; done
  if [ $missing -eq 1 ]; then
    command -v npm > /dev/null || { echo "interop: npm is missing (apt-get install nodejs npm)" >&2; exit 1; }
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "${options[@]}" "${packages[@]}" > /dev/null
  fi
  export NODE_PATH="$dir/node_modules"
}
