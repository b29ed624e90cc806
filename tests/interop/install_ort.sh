# Sourced by the interop tests: installs onnxruntime-node into BUILD/interop once. Its
# install script would fetch GPU binaries from nuget; the CPU binaries are in the npm
# package itself.
#   . install_ort.sh BUILD_DIR
# shellcheck source=install_npm.sh
. "$(dirname "${BASH_SOURCE[0]}")/install_npm.sh"
install_npm "$1/interop" onnxruntime-node@1.30.0 -- --ignore-scripts
