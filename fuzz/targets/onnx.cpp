// An ONNX file: the protobuf reader with its bounds, the reference interpreter's checks and
// run, and the importer.
#include "input_file.hpp"
#include "onnx/import.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto& file = shrink::fuzz::input_file(data, size, "model.onnx");
    return shrink::fuzz::accept_or_refuse([&] { shrink::onnx_import::import_onnx(file); });
}
