#include "run/data_access.hpp"

#include "util/random.hpp"

#include <numeric>
#include <stdexcept>

namespace shrink {

const split_view& data_access::get(shrink_split split) {
    const bool calib = split == SHRINK_SPLIT_CALIBRATION, training = split == SHRINK_SPLIT_TRAINING;
    const data_source& src = calib ? recipe_.calibration : training ? recipe_.training : recipe_.evaluation;
    const char* name = calib ? "calibration" : training ? "training" : "evaluation";
    if (!src.present) throw std::runtime_error(std::string("the recipe has no data.") + name + " section");
    split_view& view = calib ? calibration_ : training ? training_ : evaluation_;
    if (view.images) return view;
    const std::string dir = src.path.empty() ? fashion_mnist_default_dir : src.path;
    auto& images = sets_[dir + "|" + src.split];
    if (!images) images = std::make_unique<image_set>(load_fashion_mnist(dir, src.split));
    view.images = images.get();
    view.preprocess = recipe_.preprocess.present;
    view.scale = float(recipe_.preprocess.scale);
    view.mean.assign(recipe_.preprocess.mean.begin(), recipe_.preprocess.mean.end());
    view.std.assign(recipe_.preprocess.std.begin(), recipe_.preprocess.std.end());
    view.channels_last = recipe_.preprocess.layout == "nhwc";
    view.indices.resize(size_t(images->count));
    std::iota(view.indices.begin(), view.indices.end(), 0);
    // Calibration and training draw a seeded random subset; evaluation takes the split in order.
    if (calib || training)
        rng(derive_seed(recipe_.seed, std::string("data.") + name)).shuffle(view.indices.begin(), view.indices.end());
    if (src.samples && src.samples < view.indices.size()) view.indices.resize(src.samples);
    return view;
}

std::vector<std::string> data_access::files() const {
    std::vector<std::string> out;
    for (const auto* src : {&recipe_.calibration, &recipe_.evaluation, &recipe_.training})
        if (src->present)
            if (auto f = find_fashion_mnist(src->path.empty() ? fashion_mnist_default_dir : src->path, src->split)) {
                out.push_back(f->images);
                out.push_back(f->labels);
            }
    return out;
}

}  // namespace shrink
