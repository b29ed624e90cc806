# Sourced by the interop tests: installs onnxruntime-node into BUILD/interop once, like any
# other set-up step, and points NODE_PATH at it. Its install script would fetch GPU
# binaries from nuget; the CPU binaries are in the npm package itself.
#   . install_ort.sh BUILD_DIR
ort="$1/interop"
if [ ! -d "$ort/node_modules/onnxruntime-node" ]; then
  command -v npm > /dev/null || { echo "interop: npm is missing (apt-get install nodejs npm)" >&2; exit 1; }
  mkdir -p "$ort"
  npm install --prefix "$ort" --no-audit --no-fund --ignore-scripts --loglevel=error onnxruntime-node@1.30.0 > /dev/null
fi
export NODE_PATH="$ort/node_modules"
