// Pass: each stage's peak memory (the model states alive then, what the stage holds,
// data and the process itself) against the memory limit.
#include "plan/passes.hpp"

#include "data/kjv.hpp"
#include "hf/config.hpp"
#include "model/decoder.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sys/resource.h>
#include <unistd.h>

namespace shrink {

void estimate_memory(plan& p, plan_inputs& in) {
    const recipe& r = in.r;
    diagnostics& diag = in.diag;
    const size_t n = p.stages.size();
    const uint64_t state_bytes = std::max<uint64_t>(p.model.memory_bytes, p.model.parameters * 4);
    const uint64_t widths = uint64_t(p.model.activation_floats);
    uint64_t inputs = 0, hessians = 0, attention_heads = 0;  // query heads of every attention layer
    for (const auto& [key, value] : p.model.info)
        if (key == "hf.config")
            try {
                const hf::decoder_config c = hf::parse_decoder_config(value, "hf.config");
                attention_heads = uint64_t(c.heads * c.layers);
            } catch (const std::exception&) {
            }
    for (const auto& l : p.model.layers)
        if (has_matrix(l.op)) {
            inputs += uint64_t(l.input_size);
            hessians += uint64_t(l.in) * uint64_t(l.in) * 8;
        }
    // A block-by-block run (run/block_feed.hpp) holds the value entering a block for every
    // sample: a block's first layer reads it (a decoder's residual stream; each layer's
    // input outside blocks), except the model's input, which each batch reads afresh. Its
    // Hessians are one block's, one per distinct layer input (q, k and v read the same value).
    uint64_t stream_width = 0, block_hessians = 0;
    {
        std::map<std::string, std::set<std::string>> seen;  // block -> inputs counted
        std::map<std::string, uint64_t> per_block;
        std::string previous = "\n";
        const std::string model_input = p.model.layers.empty() ? std::string() : p.model.layers.front().input;
        for (const auto& l : p.model.layers) {
            const std::string key = block_of(l.name);
            if ((key.empty() || key != previous) && l.input != model_input) stream_width = std::max(stream_width, uint64_t(l.input_size));
            previous = key;
            const std::string group = key.empty() ? l.name : key;
            if (l.op == "linear" && seen[group].insert(l.input).second) per_block[group] += uint64_t(l.in) * uint64_t(l.in) * 8;
        }
        for (const auto& [group, bytes] : per_block) block_hessians = std::max(block_hessians, bytes);
    }
    // A language model's samples are windows of seq_len tokens, a row each; a batch holds
    // whole windows up to 1,024 tokens (run/split_feed.hpp).
    const bool lm = p.model.vocab > 0;
    auto rows_of = [](const data_source& d) { return d.is_text() ? uint64_t(d.seq_len) : uint64_t(1); };
    auto batch_rows = [](const data_source& d) {
        return d.is_text() ? uint64_t(std::max<int64_t>(1, 1024 / d.seq_len) * d.seq_len) : uint64_t(256);
    };
    uint64_t data_bytes = 0;
    // Bytes of a text section's text; 0 when its file cannot be read (the run says why).
    auto text_bytes = [](const data_source& d) {
        std::error_code ec;
        const uint64_t size = d.dataset == "kjv" ? kjv_text_bytes : uint64_t(std::filesystem::file_size(d.path, ec));
        return ec ? uint64_t(0) : size;
    };
    std::error_code ec;
    std::set<std::string> texts;  // sections reading the same text share its tokens
    for (const data_source* d : {&r.calibration, &r.evaluation, &r.training}) {
        if (!d->present) continue;
        if (d->is_text()) {
            if (!texts.insert(d->dataset + "|" + d->path).second) continue;
            // While it is encoded, before the first stage: the text, its copy, its UTF-16
            // form for the split regex (four times the text) and the growing token ids (4
            // bytes each, twice while the vector grows). The report's measured peak is the
            // process's so far, which holds that moment.
            const uint64_t text = text_bytes(*d);
            data_bytes += 4 * text + uint64_t(8 * double(text) / p.text_bytes_per_token);
        } else if (d != &r.training) {
            data_bytes += (d->split == "train" ? 60000u : 10000u) * uint64_t(784 + 4 + 8);
        }
    }
    // The tokenizer in memory: its maps take about eight times tokenizer.json.
    if (lm && !p.tokenizer.empty()) data_bytes += 8 * uint64_t(std::filesystem::file_size(p.tokenizer, ec));
    // A batch's activations: a classifier's estimate keeps every activation of 256 samples
    // (measured close for CNNs, whose blocked layouts and folded copies add up); a language
    // model's engine reuses dead buffers, so the live peak counts, plus the logits the
    // runner hands back.
    const uint64_t forward_bytes =
        lm ? batch_rows(r.evaluation.present ? r.evaluation : r.calibration) * uint64_t(p.model.live_activation_floats + p.model.vocab) * 4
           : 256 * widths * 8;
    if (r.memory_limit) {
        p.memory_limit = *r.memory_limit;
        p.memory_limit_source = "limits.memory";
    } else {
        p.memory_limit = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGE_SIZE));
        p.memory_limit_source = "this machine's memory";
    }
    // The process itself (code and data of shrink, oneDNN, the plugins), measured now.
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const uint64_t process_bytes = uint64_t(usage.ru_maxrss) * 1024;
    // The outline a stage's own memory estimate reads (abi.h, shrink_model_outline).
    shrink_model_outline outline{};
    outline.struct_size = sizeof outline;
    outline.parameters = p.model.parameters;
    outline.activation_floats = widths;
    outline.calibration_samples = r.calibration.present ? (r.calibration.samples ? r.calibration.samples : 60000) : 0;
    for (const auto& l : p.model.layers)
        if (has_matrix(l.op)) {
            ++outline.matrix_layers;
            outline.largest_weight = std::max(outline.largest_weight, uint64_t(l.in) * uint64_t(l.out));
            outline.widest_input = std::max(outline.widest_input, uint64_t(l.in));
        }
    std::vector<int> pending(n);
    for (size_t i = 0; i < n; ++i) pending[i] = int(p.stages[i].children.size());
    std::set<int> retained;
    for (int i : p.order) {
        planned_stage& st = p.stages[size_t(i)];
        if (st.parent >= 0 && --pending[size_t(st.parent)] == 0) retained.erase(st.parent);
        const uint64_t states = 2 + retained.size();  // the input model, the retained branch points, this stage's own
        uint32_t res = st.type ? st.type->type->resources : 0;
        uint64_t extra = 0;
        std::string detail = std::to_string(states) + " model states x " + format_bytes(state_bytes);
        auto add = [&](uint64_t bytes, const char* what) {
            extra += bytes;
            detail += " + " + format_bytes(bytes) + " " + what;
        };
        // A stage that estimates its own memory (abi.h, memory_bytes) replaces what its resource bits imply.
        const shrink_stage_type* type = st.type ? st.type->type : nullptr;
        std::optional<uint64_t> own;
        if (type && type->memory_bytes) {
            std::vector<shrink_param_value> storage;
            const shrink_params cp = c_params(st.params, storage);
            shrink_error error{};
            uint64_t bytes = 0;
            if (type->memory_bytes(type->state, &cp, &outline, &bytes, &error) != SHRINK_OK)
                diag.error(st.spec->use_mark, "stage '" + st.spec->id + "': the plugin could not estimate its memory: " + error.message);
            else
                own = bytes;
        }
        if (own) {
            add(*own, "the stage's own estimate");
            // It replaces what the resource bits would add, but for a block-by-block run's,
            // which the host holds (its stream, and its Hessians a block at a time).
            res = (res & SHRINK_RESOURCE_BLOCK_STREAM) ? res & (SHRINK_RESOURCE_BLOCK_STREAM | SHRINK_RESOURCE_HESSIANS) : 0;
        }
        if (res & SHRINK_RESOURCE_WEIGHT_COPY) add(p.model.parameters * 8, "weight copies");
        if (res & SHRINK_RESOURCE_FORWARD) add(p.model.parameters * 4 + forward_bytes, "decoded weights and a batch");
        if (res & SHRINK_RESOURCE_ACTIVATION_CACHE)
            add((r.calibration.samples ? r.calibration.samples : 60000) * rows_of(r.calibration) * inputs * 4, "activation cache");
        if (res & SHRINK_RESOURCE_BLOCK_STREAM) {
            // The calibration windows (or images) the stage reads: its `samples` param when
            // it has one, at most the recipe's; a text's windows estimated from its bytes.
            uint64_t samples = r.calibration.samples;
            if (r.calibration.is_text()) {
                const uint64_t text = text_bytes(r.calibration);
                const uint64_t windows = text ? uint64_t(double(text) / p.text_bytes_per_token / double(r.calibration.seq_len)) + 1 : 0;
                if (windows && (!samples || windows < samples)) samples = windows;
            } else if (!samples) {
                samples = 60000;
            }
            for (const resolved_param& rp : st.params)
                if (rp.name == "samples" && rp.int_value > 0) samples = std::min(samples, uint64_t(rp.int_value));
            add(2 * samples * rows_of(r.calibration) * stream_width * 4, "the stream between blocks");
            add(p.model.parameters * 4 + forward_bytes, "decoded weights and a batch");
            if (res & SHRINK_RESOURCE_HESSIANS) add(block_hessians, "a block's Hessians");
        } else if (res & SHRINK_RESOURCE_HESSIANS) {
            add(hessians, "Hessians");
        }
        if (res & SHRINK_RESOURCE_TRAINING_STATE) {
            add(p.model.parameters * 12, "training state");
            // Every activation of a batch and its gradient; attention's softmax weights.
            uint64_t batch = 128;
            for (const resolved_param& rp : st.params)
                if (rp.name == "batch") batch = uint64_t(rp.int_value);
            // A batch is at most the samples there are: for text, the nine windows in ten
            // that training draws from (their count estimated from the text's bytes).
            uint64_t samples = r.training.samples;
            if (r.training.is_text()) {
                const uint64_t text = text_bytes(r.training);
                const uint64_t windows = text ? uint64_t(double(text) / p.text_bytes_per_token / double(r.training.seq_len) * 0.9) + 1 : 0;
                if (windows && (!samples || windows < samples)) samples = windows;
            }
            if (samples) batch = std::min(batch, samples);
            const uint64_t rows = batch * rows_of(r.training);
            add(rows * widths * 8 + (r.training.is_text() ? rows * uint64_t(r.training.seq_len) * attention_heads * 4 : 0),
                "a training batch's activations");
            // A distiller runs the teacher on the same batch: its activations and its soft
            // targets beside the logits.
            if (st.kind == "distiller")
                add(rows * widths * 4 + rows * uint64_t(std::max<int64_t>(p.model.vocab, 0)) * 8, "the teacher's batch");
        }
        if (data_bytes) add(data_bytes, "data");
        add(process_bytes, "the process");
        st.peak_memory = states * state_bytes + extra;
        st.memory_detail = detail;
        if (!st.children.empty()) retained.insert(i);
        if (st.peak_memory > p.memory_limit)
            diag.error(r.memory_limit ? r.limits_mark : st.spec->use_mark,
                       "stage '" + st.spec->id + "' needs about " + format_bytes(st.peak_memory) + " at its peak (" + detail +
                           "), more than the memory limit of " + format_bytes(p.memory_limit) + " (" + p.memory_limit_source +
                           "); branch later, evaluate fewer copies, or raise limits.memory");
    }
}

}  // namespace shrink
