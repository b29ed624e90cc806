#include "run/split_feed.hpp"

#include <algorithm>
#include <chrono>
#include <memory>

namespace shrink {

void forward_batches(const model& m, const split_view& view, uint64_t max_samples, runner& run, const batch_observer& observer) {
    const input_filler filler(view, m);
    const uint64_t total = max_samples ? std::min<uint64_t>(max_samples, view.indices.size()) : view.indices.size();
    const int64_t batch = 256;
    std::vector<float> input;
    std::vector<int32_t> labels;
    for (uint64_t start = 0; start < total; start += batch) {
        const int64_t rows = int64_t(std::min<uint64_t>(batch, total - start));
        input.resize(size_t(rows * m.input_features));
        labels.resize(size_t(rows));
        for (int64_t r = 0; r < rows; ++r)
            filler.fill(view.indices[start + uint64_t(r)], input.data() + r * m.input_features, &labels[size_t(r)]);
        const auto t0 = std::chrono::steady_clock::now();
        const std::vector<float> out = run.run(input.data(), rows, observer.on_layer_input);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        observer.on_output(out.data(), rows, run.output_width(), labels.data(), seconds);
        if (observer.on_progress) observer.on_progress(start + uint64_t(rows), total);
    }
}

train::sample_source training_samples(const split_view& view, const model& m) {
    auto filler = std::make_shared<const input_filler>(view, m);
    train::sample_source data;
    data.count = int64_t(view.indices.size());
    const int64_t width = m.input_features;
    data.fill = [filler, &view, width](const int64_t* idx, int64_t rows, float* x, int32_t* labels) {
        for (int64_t r = 0; r < rows; ++r) filler->fill(view.indices[size_t(idx[r])], x + r * width, labels + r);
    };
    return data;
}

}  // namespace shrink
