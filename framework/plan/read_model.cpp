// Pass: the model's outline (layers, shapes, sizes) and hash, before any weight is read.
#include "plan/passes.hpp"

#include "hf/folder.hpp"
#include "onnx/import.hpp"
#include "util/files.hpp"

#include <filesystem>

namespace shrink {

void read_model(plan& p, plan_inputs& in) {
    const recipe& r = in.r;
    diagnostics& diag = in.diag;
    try {
        if (hf::is_model_folder(r.model)) {
            // A Hugging Face folder is imported to be planned (its tensors are mapped, not copied).
            p.model = outline_of(hf::import_folder(r.model));
            p.model_sha256 = hf::folder_sha256(r.model);
            return;
        }
        if (std::filesystem::path(r.model).extension() == ".onnx") {
            p.model = outline_of(onnx_import::import_onnx(r.model));
            p.model.file_bytes = std::filesystem::file_size(r.model);
        } else {
            p.model = read_model_outline(r.model);
        }
        p.model_sha256 = sha256_file(r.model);
    } catch (const std::exception& e) {
        diag.error(r.model_mark, std::string("cannot read the model's graph: ") + e.what());
        diag.throw_if_any();
    }
}

}  // namespace shrink
