#include "run/split_feed.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>

namespace shrink {

batch_feed::batch_feed(const model& m, const split_view& view, uint64_t max_samples) : m_(m), view_(view) {
    total_ = max_samples ? std::min<uint64_t>(max_samples, view.indices.size()) : view.indices.size();
    if (view.text) {
        per_batch_ = uint64_t(std::max<int64_t>(1, 1024 / view.text->seq_len));
    } else {
        filler_ = std::make_unique<input_filler>(view, m);
        per_batch_ = 256;
    }
}

batch_feed::~batch_feed() = default;

int64_t batch_feed::fill(size_t b, std::vector<float>& input, std::vector<int32_t>& labels) const {
    const uint64_t start = uint64_t(b) * per_batch_, count = std::min(per_batch_, total_ - start);
    input.clear();
    labels.clear();
    if (view_.text) {
        // Whole windows: each token an [id, position] row, labelled with the next token.
        const int64_t seq_len = view_.text->seq_len;
        for (uint64_t w = 0; w < count; ++w) {
            const uint32_t* ids = view_.text->ids->data() + view_.indices[start + w] * seq_len;
            for (int64_t t = 0; t < seq_len; ++t) {
                input.insert(input.end(), {float(ids[t]), float(t)});
                labels.push_back(t + 1 < seq_len ? int32_t(ids[t + 1]) : -1);
            }
        }
        return int64_t(count) * seq_len;
    }
    input.resize(size_t(count * uint64_t(m_.input_features)));
    labels.resize(size_t(count));
    for (uint64_t r = 0; r < count; ++r) filler_->fill(view_.indices[start + r], input.data() + r * uint64_t(m_.input_features), &labels[r]);
    return int64_t(count);
}

void forward_batches(const model& m, const split_view& view, uint64_t max_samples, runner& run, const batch_observer& observer) {
    const batch_feed feed(m, view, max_samples);
    std::vector<float> input;
    std::vector<int32_t> labels;
    for (size_t b = 0; b < feed.batches(); ++b) {
        const int64_t rows = feed.fill(b, input, labels);
        const auto t0 = std::chrono::steady_clock::now();
        const std::vector<float> out = run.run(input.data(), rows, observer.on_layer_input);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        observer.on_output(out.data(), rows, run.output_width(), labels.data(), seconds);
        if (observer.on_progress) observer.on_progress(feed.samples_through(b), feed.samples());
    }
}

train::sample_source training_samples(const split_view& view, const model& m) {
    if (view.text) {
        // A sample is a window: its tokens as [id, position] rows, labelled with the next token.
        train::sample_source data;
        data.count = int64_t(view.indices.size());
        data.rows_per_sample = view.text->seq_len;
        data.fill = [&view](const int64_t* idx, int64_t rows, float* x, int32_t* labels) {
            const int64_t seq_len = view.text->seq_len;
            for (int64_t w = 0; w < rows; ++w) {
                const uint32_t* ids = view.text->ids->data() + view.indices[size_t(idx[w])] * seq_len;
                for (int64_t t = 0; t < seq_len; ++t) {
                    x[(w * seq_len + t) * 2] = float(ids[t]);
                    x[(w * seq_len + t) * 2 + 1] = float(t);
                    labels[w * seq_len + t] = t + 1 < seq_len ? int32_t(ids[t + 1]) : -1;
                }
            }
        };
        return data;
    }
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
