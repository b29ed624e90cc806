#include "run/artifacts.hpp"

#include "util/files.hpp"

#include <shrink/abi.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace shrink {

namespace fs = std::filesystem;

uint64_t artifact_element_size(int32_t dtype) {
    switch (dtype) {
        case SHRINK_DTYPE_F64:
        case SHRINK_DTYPE_I64: return 8;
        case SHRINK_DTYPE_F32:
        case SHRINK_DTYPE_I32: return 4;
        case SHRINK_DTYPE_U8: return 1;
        default: return 0;
    }
}

namespace {
const std::pair<int32_t, const char*> dtype_names[] = {
    {SHRINK_DTYPE_F64, "f64"}, {SHRINK_DTYPE_F32, "f32"}, {SHRINK_DTYPE_I64, "i64"}, {SHRINK_DTYPE_I32, "i32"}, {SHRINK_DTYPE_U8, "u8"}};
}  // namespace

const char* artifact_dtype_name(int32_t dtype) {
    for (const auto& [d, name] : dtype_names)
        if (d == dtype) return name;
    return "?";
}

int32_t parse_artifact_dtype(const std::string& name) {
    for (const auto& [d, n] : dtype_names)
        if (name == n) return d;
    return 0;
}

artifact::artifact(artifact_meta meta, std::vector<uint8_t> data) : meta_(std::move(meta)), data_(std::move(data)) {
    verified_ = true;
}

artifact::artifact(artifact_meta meta, fs::path file, bool written)
    : meta_(std::move(meta)), file_(std::move(file)), verified_(written) {
    std::error_code ec;
    const auto size = fs::file_size(file_, ec);
    if (ec || !fs::is_regular_file(file_, ec)) throw std::runtime_error(file_.string() + ": artifact file missing");
    if (size != meta_.bytes)
        throw std::runtime_error(file_.string() + ": artifact file holds " + std::to_string(size) + " bytes, expected " +
                                 std::to_string(meta_.bytes));
}

bool artifact::verified() const {
    std::lock_guard lock(verify_);
    return file_.empty() || verified_;
}

void artifact::read(uint64_t offset, uint64_t count, void* dst) const {
    if (offset > meta_.bytes || count > meta_.bytes - offset)
        throw std::invalid_argument("bytes [" + std::to_string(offset) + ", +" + std::to_string(count) +
                                    ") lie outside the artifact's " + std::to_string(meta_.bytes));
    if (file_.empty()) {
        if (count) std::memcpy(dst, data_.data() + offset, count);
        return;
    }
    {
        // The first read checks the whole file against the hash it was stored under: a
        // file changed in the pool since must not pass for a measurement.
        std::lock_guard lock(verify_);
        if (!verified_) {
            if (sha256_file(file_) != meta_.sha256)
                throw std::runtime_error(file_.string() + ": artifact file does not match its sha256 " + meta_.sha256 +
                                         " (changed since it was stored)");
            verified_ = true;
        }
    }
    std::ifstream in(file_, std::ios::binary);
    in.seekg(std::streamoff(offset));
    in.read(static_cast<char*>(dst), std::streamsize(count));
    if (!in) throw std::runtime_error(file_.string() + ": cannot read the artifact file");
}

std::shared_ptr<const artifact> store_artifact(const fs::path& pool, artifact_meta meta, const void* data) {
    const std::string_view bytes(static_cast<const char*>(data), meta.bytes);
    meta.sha256 = sha256_hex(bytes);
    if (pool.empty()) {
        const auto* p = static_cast<const uint8_t*>(data);
        return std::make_shared<const artifact>(std::move(meta), std::vector<uint8_t>(p, p + meta.bytes));
    }
    std::error_code ec;
    fs::create_directories(pool, ec);
    if (ec) throw std::runtime_error(pool.string() + ": cannot create the artifact directory: " + ec.message());
    const fs::path file = pool / meta.sha256;
    const bool write = !fs::is_regular_file(file, ec) || fs::file_size(file, ec) != meta.bytes;
    if (write) write_file_atomic(file, bytes);
    return std::make_shared<const artifact>(std::move(meta), file, write);
}

std::shared_ptr<const artifact> accept_artifact(const artifact_scope& scope, const std::string& stage_id, int32_t dtype,
                                                const std::vector<uint64_t>& shape, const void* data) {
    if (scope.facts.empty())
        throw std::invalid_argument("stage '" + stage_id +
                                    "' provides no per-layer fact for an artifact to back; declare the fact it measures "
                                    "(e.g. provides(\"activation_ranges\") or provides(\"hessians\")) so the planner "
                                    "knows when it goes stale");
    const uint64_t element = artifact_element_size(dtype);
    if (!element) throw std::invalid_argument("artifact type " + std::to_string(dtype) + " is not one of f64, f32, i64, i32, u8");
    if (shape.empty() || shape.size() > SHRINK_ARTIFACT_MAX_RANK)
        throw std::invalid_argument("artifact rank " + std::to_string(shape.size()) + " is outside [1, " +
                                    std::to_string(SHRINK_ARTIFACT_MAX_RANK) + "]");
    uint64_t bytes = element;
    for (uint64_t d : shape) {
        // A wrapped product would pass a size check and then read past the plugin's buffer.
        if (d && bytes > UINT64_MAX / d) throw std::invalid_argument("artifact shape overflows 64 bits");
        bytes *= d;
    }
    if (bytes && !data) throw std::invalid_argument("artifact data is NULL");
    return store_artifact(scope.pool, artifact_meta{dtype, shape, bytes, "", scope.facts}, data);
}

fs::path place_artifact(const artifact& a, const fs::path& pool) {
    const fs::path target = pool / a.meta().sha256;
    std::error_code ec;
    if (fs::is_regular_file(target, ec) && fs::file_size(target, ec) == a.meta().bytes) return target;
    fs::create_directories(pool, ec);
    if (ec) throw std::runtime_error(pool.string() + ": cannot create the artifact directory: " + ec.message());
    if (a.file().empty()) {
        write_file_atomic(target, std::string_view(reinterpret_cast<const char*>(a.memory().data()), a.memory().size()));
        return target;
    }
    const fs::path temp = pool / (a.meta().sha256 + ".tmp");
    fs::remove(temp, ec);
    fs::create_hard_link(a.file(), temp, ec);
    if (ec) fs::copy_file(a.file(), temp, fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::rename(temp, target, ec);
    if (ec) throw std::runtime_error(target.string() + ": " + ec.message());
    return target;
}

void forget_stale(artifact_map& artifacts, const std::map<std::string, std::set<std::string>>& stale,
                  const std::set<artifact_key>& keep, const std::function<std::string(const std::string&)>& origin) {
    for (auto it = artifacts.begin(); it != artifacts.end();) {
        const std::string layer = origin ? origin(it->first.first) : it->first.first;
        bool gone = false;
        if (!keep.count(it->first))
            for (const std::string& fact : it->second->meta().facts)
                if (auto s = stale.find(fact); s != stale.end() && s->second.count(layer)) gone = true;
        it = gone ? artifacts.erase(it) : std::next(it);
    }
}

}  // namespace shrink
