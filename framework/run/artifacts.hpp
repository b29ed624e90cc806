// Per-layer artifacts: what a stage measured about a layer (activation ranges, input
// Hessians X^T X, histograms, index arrays) as typed binary arrays, kept beside the model
// state along a path.
//
// An artifact is immutable once stored. Forked model states share it (a shared_ptr), and
// once the stage that made it finished, it lives in a file named by its sha256 in a pool
// directory (RUN_DIR/checkpoints/artifacts, and the stage cache's own pool), read only when
// a stage asks for bytes of it and checked against its hash on that first read. A 4096-wide
// layer's Hessian is 128 MiB of float64: none of them has to stay in memory.
//
// Each artifact backs the per-layer facts its stage provides (activation_ranges, hessians,
// ...). When the planner says a later stage makes such a fact stale for a layer (it changed
// the weights upstream), the executor forgets the artifacts behind it, so no stage can read
// a measurement of weights that are gone (docs/plugins.md, "Artifacts").
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace shrink {

/// What an artifact is: element type (SHRINK_DTYPE_F64, F32, I64, I32 or U8), shape,
/// size, content hash and the facts it backs.
struct artifact_meta {
    int32_t dtype = 0;
    std::vector<uint64_t> shape;
    uint64_t bytes = 0;
    std::string sha256;
    std::set<std::string> facts;
};

/// Bytes per element of an artifact type; 0 for a type artifacts do not take.
uint64_t artifact_element_size(int32_t dtype);
/// "f64", "f32", "i64", "i32", "u8"; parse_artifact_dtype is its inverse (0 when unknown).
const char* artifact_dtype_name(int32_t dtype);
int32_t parse_artifact_dtype(const std::string& name);

class artifact {
  public:
    /// Held in memory (a stage without a pool directory: tests, a plan check).
    artifact(artifact_meta meta, std::vector<uint8_t> data);
    /// In `file`, read lazily; its size is checked now, its hash on the first read (unless
    /// `written`: this process just wrote it from bytes hashed in memory).
    artifact(artifact_meta meta, std::filesystem::path file, bool written = false);

    const artifact_meta& meta() const { return meta_; }
    /// Copies bytes [offset, offset + count) to dst. Throws std::runtime_error naming the
    /// file when it no longer holds the bytes it was stored with.
    void read(uint64_t offset, uint64_t count, void* dst) const;
    /// Empty when held in memory.
    const std::filesystem::path& file() const { return file_; }
    /// Whether its bytes are known to be those stored: held in memory, written by this
    /// process, or a file already checked against its hash by a first read.
    bool verified() const;
    /// The bytes when held in memory, else empty.
    const std::vector<uint8_t>& memory() const { return data_; }

  private:
    artifact_meta meta_;
    std::vector<uint8_t> data_;
    std::filesystem::path file_;
    mutable std::mutex verify_;
    mutable bool verified_ = false;
};

/// (layer, key) -> artifact, shared between forks.
using artifact_key = std::pair<std::string, std::string>;
using artifact_map = std::map<artifact_key, std::shared_ptr<const artifact>>;

/// Where a running stage's artifacts go and what they back: the run's pool directory
/// (empty: kept in memory) and the per-layer facts the stage provides.
struct artifact_scope {
    std::filesystem::path pool;
    std::set<std::string> facts;
};

/// Checks an artifact a stage hands over (type, rank, shape, size) and stores it; throws
/// std::invalid_argument saying what is wrong.
std::shared_ptr<const artifact> accept_artifact(const artifact_scope& scope, const std::string& stage_id, int32_t dtype,
                                                const std::vector<uint64_t>& shape, const void* data);

/// Writes `bytes` into `pool` as a file named by its sha256 (unless one is there) and
/// returns the artifact reading it. An empty pool keeps the bytes in memory.
std::shared_ptr<const artifact> store_artifact(const std::filesystem::path& pool, artifact_meta meta, const void* data);

/// Makes sure `pool` holds the artifact's file (a hard link to where it is, else a copy, or
/// the bytes written when it is in memory) and returns that path.
std::filesystem::path place_artifact(const artifact& a, const std::filesystem::path& pool);

/// Forgets every artifact that backs a fact `stale` lists for its layer (fact -> layer
/// names of the planned model), except those in `keep` (what the stage itself stored).
/// `origin` maps an artifact's layer to the planned model's layer it came from (a
/// factorized layer's two halves to the layer they replaced); the identity when empty.
void forget_stale(artifact_map& artifacts, const std::map<std::string, std::set<std::string>>& stale,
                  const std::set<artifact_key>& keep, const std::function<std::string(const std::string&)>& origin = {});

}  // namespace shrink
