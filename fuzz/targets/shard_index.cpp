// A model.safetensors.index.json in a folder that holds two shards, a subfolder, and a
// symbolic link out of the folder: every path the index names is checked to stay inside.
#include "hf/shard_index.hpp"
#include "input_file.hpp"

#include <fstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    namespace fs = std::filesystem;
    const auto& file = shrink::fuzz::input_file(data, size, "model.safetensors.index.json");
    static const bool made = [&] {
        const fs::path folder = file.parent_path();
        for (const char* shard : {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) std::ofstream(folder / shard) << "x";
        fs::create_directories(folder / "sub");
        std::error_code ec;
        fs::create_symlink("/etc/hostname", folder / "out.safetensors", ec);
        return true;
    }();
    (void)made;
    return shrink::fuzz::accept_or_refuse([&] { shrink::hf::find_weight_files(file.parent_path()); });
}
