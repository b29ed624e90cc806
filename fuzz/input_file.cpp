#include "input_file.hpp"

#include <fstream>
#include <map>
#include <string>
#include <unistd.h>

namespace shrink::fuzz {

const std::filesystem::path& input_file(const uint8_t* data, size_t size, const char* name) {
    static std::map<std::string, std::filesystem::path> paths;
    auto [it, made] = paths.try_emplace(name);
    if (made) {
        const auto dir = std::filesystem::temp_directory_path() / ("shrink-fuzz-" + std::to_string(getpid()));
        std::filesystem::create_directories(dir);
        it->second = dir / name;
    }
    std::ofstream out(it->second, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
    return it->second;
}

}  // namespace shrink::fuzz
