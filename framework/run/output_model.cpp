#include "run/output_model.hpp"

#include "model/safetensors.hpp"
#include "model/verify.hpp"
#include "onnx/export.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"

#include <string>
#include <vector>

namespace shrink {

namespace fs = std::filesystem;

void write_output_model(const plan& p, int i, std::shared_ptr<model_state> state, const fs::path& models_dir) {
    int producer = i;
    while (producer >= 0 && !p.stages[size_t(producer)].changes_weights()) producer = p.stages[size_t(producer)].parent;
    const std::string name = producer < 0 ? "input" : p.stages[size_t(producer)].spec->id;
    const fs::path file = models_dir / (name + ".safetensors");
    if (fs::exists(file)) return;
    const std::string written = save_model(state->net, file);
    // The state is done with: let it go before the file is read back, so that the two
    // never take memory at the same time.
    state.reset();
    std::vector<std::string> problems;
    if (const std::string on_disk = sha256_file(file); on_disk != written)
        problems.push_back("its bytes on disk (sha256 " + on_disk + ") are not those written (" + written + ")");
    const model back = load_model(file);
    if (serialized_sha256(back) != written)
        problems.push_back("what the reader makes of it does not serialize back to the bytes written");
    for (const std::string& broken : check_promises(back, p.stages[size_t(producer < 0 ? i : producer)].promised_encodings))
        problems.push_back(broken);
    if (!problems.empty()) {
        std::string all;
        for (const std::string& m : problems) all += "\n  " + m;
        throw stage_error(file.string() + ": error: the written model does not verify:" + all);
    }
    if (p.source->output_format == "onnx") onnx_import::save_onnx(back, models_dir / (name + ".onnx"));
}

}  // namespace shrink
