#include "run/split_feed.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>

namespace shrink {

namespace {

/// Text: whole windows a batch, as many as fit in 1,024 tokens (at least one).
void forward_windows(const split_view& view, uint64_t max_samples, runner& run, const batch_observer& observer) {
    const token_text& text = *view.text;
    const int64_t seq_len = text.seq_len;
    const uint64_t total = max_samples ? std::min<uint64_t>(max_samples, view.indices.size()) : view.indices.size();
    const uint64_t per_batch = uint64_t(std::max<int64_t>(1, 1024 / seq_len));
    std::vector<float> input;
    std::vector<int32_t> labels;
    for (uint64_t start = 0; start < total; start += per_batch) {
        const uint64_t windows = std::min(per_batch, total - start);
        input.clear();
        labels.clear();
        for (uint64_t w = 0; w < windows; ++w) {
            const uint32_t* ids = text.ids->data() + view.indices[start + w] * seq_len;
            for (int64_t t = 0; t < seq_len; ++t) {
                input.insert(input.end(), {float(ids[t]), float(t)});
                labels.push_back(t + 1 < seq_len ? int32_t(ids[t + 1]) : -1);
            }
        }
        const int64_t rows = int64_t(windows) * seq_len;
        const auto t0 = std::chrono::steady_clock::now();
        const std::vector<float> out = run.run(input.data(), rows, observer.on_layer_input);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        observer.on_output(out.data(), rows, run.output_width(), labels.data(), seconds);
        if (observer.on_progress) observer.on_progress(start + windows, total);
    }
}

}  // namespace

void forward_batches(const model& m, const split_view& view, uint64_t max_samples, runner& run, const batch_observer& observer) {
    if (view.text) return forward_windows(view, max_samples, run, observer);
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
