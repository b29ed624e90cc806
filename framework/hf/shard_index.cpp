#include "hf/shard_index.hpp"
#include "util/files.hpp"
#include "util/json_fields.hpp"

#include <set>

namespace shrink::hf {

namespace {

namespace fs = std::filesystem;

constexpr uint64_t max_index_bytes = 64 << 20;

/// `name`, as the index gives it, resolved inside `folder`; refuses anything else.
fs::path shard_path(const json_fields& r, const std::string& key, const std::string& name, const fs::path& folder) {
    const fs::path rel(name);
    if (name.empty() || rel.is_absolute()) r.fail(key, "'" + name + "' must be a file name relative to the folder");
    for (const fs::path& part : rel)
        if (part == ".." || part == ".") r.fail(key, "'" + name + "' must not leave the folder ('" + part.string() + "')");
    const fs::path p = folder / rel;
    std::error_code ec;
    const fs::file_status st = fs::symlink_status(p, ec);
    if (!fs::exists(st)) r.fail(key, "shard '" + name + "' is missing from " + folder.string());
    // A symbolic link is followed only where it ends inside the folder (the Hugging Face
    // cache links shards into its blobs folder, next to the snapshot: canonical paths decide).
    const fs::path real = fs::weakly_canonical(p, ec), root = fs::weakly_canonical(folder, ec);
    if (fs::is_symlink(st)) {
        const fs::path blobs = root.parent_path().parent_path() / "blobs";
        auto inside = [&](const fs::path& dir) {
            auto [d, r2] = std::mismatch(dir.begin(), dir.end(), real.begin(), real.end());
            return d == dir.end();
        };
        if (!inside(root) && !inside(blobs)) r.fail(key, "shard '" + name + "' links outside the folder (to " + real.string() + ")");
    }
    if (!fs::is_regular_file(real, ec)) r.fail(key, "shard '" + name + "' is not a regular file");
    return p;
}

}  // namespace

weight_files parse_shard_index(const std::string& json_text, const fs::path& index) {
    const json_fields r(index);
    const nlohmann::json doc = r.parse_object(json_text);
    const nlohmann::json& map = r.field(doc, "weight_map", "");
    if (!map.is_object() || map.empty()) r.fail("weight_map", "must be a non-empty object of tensor: file");
    weight_files w;
    std::set<fs::path> files;
    std::map<std::string, fs::path> checked;  // shard name -> path, each checked once
    const fs::path folder = index.parent_path().empty() ? fs::path(".") : index.parent_path();
    for (auto it = map.begin(); it != map.end(); ++it) {
        const std::string key = "weight_map[\"" + it.key().substr(0, 80) + "\"]";
        const std::string name = r.string_of(it.value(), key);
        auto c = checked.find(name);
        if (c == checked.end()) c = checked.emplace(name, shard_path(r, key, name, folder)).first;
        w.file_of[it.key()] = c->second;
        files.insert(c->second);
    }
    w.files.assign(files.begin(), files.end());
    return w;
}

weight_files find_weight_files(const fs::path& folder) {
    const fs::path index = folder / "model.safetensors.index.json", single = folder / "model.safetensors";
    std::error_code ec;
    if (fs::exists(index, ec)) {
        return parse_shard_index(read_input_file(index, max_index_bytes), index);
    }
    if (fs::is_regular_file(single, ec)) return weight_files{{single}, {}};
    throw input_error(folder.string() + ": no model.safetensors or model.safetensors.index.json (a Hugging Face model folder has one)");
}

}  // namespace shrink::hf
