#include "recipe/recipe.hpp"

#include "devices/device.hpp"

#include "data/fashion_mnist.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>
#include <sstream>

namespace shrink {

namespace fs = std::filesystem;

namespace {

/// Typed reads of yaml nodes that record problems instead of stopping at the first.
class reader {
  public:
    explicit reader(diagnostics& d) : diag_(d) {}

    bool expect_map(const yaml_node& n, const std::string& what) {
        if (n.is_map()) return true;
        diag_.error(n.mark, what + " must be a mapping, got a " + n.kind_name());
        return false;
    }

    void reject_unknown(const yaml_node& map, const std::vector<std::string>& allowed, const std::string& where) {
        for (const yaml_node& key : map.keys) {
            bool known = false;
            for (const std::string& a : allowed) known = known || a == key.text;
            if (!known) diag_.error(key.mark, "unknown key '" + key.text + "' in " + where + did_you_mean(key.text, allowed));
        }
    }

    std::optional<std::string> text(const yaml_node& n, const std::string& what) {
        if (n.is_scalar()) return n.text;
        diag_.error(n.mark, what + " must be a string, got a " + n.kind_name());
        return std::nullopt;
    }

    std::optional<int64_t> integer(const yaml_node& n, const std::string& what, int64_t lo, int64_t hi) {
        std::optional<int64_t> v;
        if (n.is_scalar() && !n.quoted) v = parse_decimal_int(n.text);
        if (!v) {
            diag_.error(n.mark, what + " must be a decimal integer, got '" + n.text + "'" +
                                    (n.is_scalar() && n.text.size() > 1 && n.text[0] == '0'
                                         ? " (leading zeros are not allowed: YAML 1.1 readers take them as octal)"
                                         : ""));
            return std::nullopt;
        }
        if (*v < lo || *v > hi) {
            diag_.error(n.mark, what + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                    std::to_string(*v));
            return std::nullopt;
        }
        return v;
    }

    std::optional<double> number(const yaml_node& n, const std::string& what, double lo, double hi) {
        std::optional<double> v;
        if (n.is_scalar() && !n.quoted) v = parse_finite_double(n.text);
        if (!v) {
            diag_.error(n.mark, what + " must be a finite decimal number, got '" + n.text + "'");
            return std::nullopt;
        }
        if (*v < lo || *v > hi) {
            diag_.error(n.mark, what + " must be in [" + format_double(lo) + ", " + format_double(hi) + "], got " +
                                    format_double(*v));
            return std::nullopt;
        }
        return v;
    }

    diagnostics& diag() { return diag_; }

  private:
    diagnostics& diag_;
};

std::string resolve_path(const std::string& recipe_file, const std::string& p) {
    fs::path path(p);
    if (path.is_relative()) path = fs::absolute(recipe_file).parent_path() / path;
    return path.lexically_normal().string();
}

void parse_data_source(reader& r, const yaml_node& n, const std::string& what, const std::string& recipe_file,
                       data_source& out) {
    out.present = true;
    out.mark = n.mark;
    if (!r.expect_map(n, what)) return;
    r.reject_unknown(n, {"dataset", "split", "samples", "path", "seq_len"}, what);
    static const std::vector<std::string> datasets{"fashion-mnist", "kjv", "text"};
    if (const yaml_node* d = n.find("dataset")) {
        if (auto v = r.text(*d, what + ".dataset")) {
            out.dataset = *v;
            if (std::find(datasets.begin(), datasets.end(), out.dataset) == datasets.end())
                r.diag().error(d->mark, "unknown dataset '" + out.dataset + "'; available: fashion-mnist, kjv, text" +
                                            did_you_mean(out.dataset, datasets));
        }
    } else {
        r.diag().error(n.mark, what + " needs 'dataset'");
    }
    if (const yaml_node* s = n.find("samples"))
        if (auto v = r.integer(*s, what + ".samples", 1, 10'000'000)) out.samples = static_cast<uint64_t>(*v);
    if (const yaml_node* p = n.find("path"))
        if (auto v = r.text(*p, what + ".path")) out.path = resolve_path(recipe_file, *v);
    if (out.is_text()) {
        // Text: the section's role picks the windows (evaluation the held-out tenth), so a
        // split would only contradict it.
        if (const yaml_node* s = n.find("split"))
            r.diag().error(s->mark, what + ".split does not apply to text: " + what.substr(5) +
                                        (what == "data.evaluation" ? " takes the held-out windows (every tenth)"
                                                                   : " takes the windows evaluation does not (nine in ten)"));
        out.seq_len = default_seq_len;
        if (const yaml_node* s = n.find("seq_len")) {
            out.seq_len_mark = s->mark;
            if (auto v = r.integer(*s, what + ".seq_len", 2, 1 << 20)) out.seq_len = *v;
        }
        std::error_code ec;
        if (out.dataset == "text" && out.path.empty())
            r.diag().error(n.mark, what + " with dataset 'text' needs 'path' (a UTF-8 text file, or .jsonl with a \"text\" per line)");
        else if (out.dataset == "text" && !fs::is_regular_file(out.path, ec))
            r.diag().error(n.find("path")->mark, "text file '" + out.path + "' does not exist");
        if (out.dataset == "kjv" && n.find("path"))
            r.diag().error(n.find("path")->mark, what + ".path does not apply to kjv (it comes from the Debian package bible-kjv)");
        return;
    }
    if (const yaml_node* s = n.find("seq_len"))
        r.diag().error(s->mark, what + ".seq_len applies to text datasets (kjv, text), not " + out.dataset);
    if (const yaml_node* s = n.find("split")) {
        if (auto v = r.text(*s, what + ".split")) {
            out.split = *v;
            if (out.split != "train" && out.split != "test")
                r.diag().error(s->mark, what + ".split must be 'train' or 'test', got '" + out.split + "'");
        }
    } else if (out.dataset == "fashion-mnist") {
        r.diag().error(n.mark, what + " needs 'split' (train or test)");
    }
    // Only that the files are there: reading them is the run's work.
    if (out.dataset == "fashion-mnist" && (out.split == "train" || out.split == "test")) {
        const std::string dir = out.path.empty() ? fashion_mnist_default_dir : out.path;
        if (!find_fashion_mnist(dir, out.split))
            r.diag().error(n.mark, "Fashion-MNIST " + out.split + " files not found in " + dir +
                                       (out.path.empty() ? " (install the Debian package dataset-fashion-mnist)" : ""));
    }
}

/// Stage ids and recipe names become file and directory names: 64 characters leave room
/// for what shrink adds (".safetensors", "-YYYYmmdd-HHMMSS") within any file system's 255.
constexpr size_t max_id_length = 64;

/// A name as quoted in a message: a hostile one may be thousands of characters long.
std::string shorten(const std::string& text) { return text.size() <= 80 ? text : text.substr(0, 77) + "..."; }

void parse_stage(reader& r, const yaml_node& n, stage_spec& s) {
    s.mark = n.mark;
    if (!r.expect_map(n, "a stage")) return;
    r.reject_unknown(n, {"id", "use", "after", "params", "device", "expected_drop"}, "stage");
    if (const yaml_node* id = n.find("id")) {
        s.id_mark = id->mark;
        if (auto v = r.text(*id, "stage id")) {
            s.id = *v;
            const bool ok = !s.id.empty() && s.id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == std::string::npos;
            if (!ok) r.diag().error(id->mark, "stage id '" + shorten(s.id) + "' may use only letters, digits, '_' and '-'");
            // An id names files (models/ID.safetensors): refused here, not when a file
            // system refuses the name after a run has written others.
            else if (s.id.size() > max_id_length)
                r.diag().error(id->mark, "stage id '" + shorten(s.id) + "' is " + std::to_string(s.id.size()) + " characters long; at most " +
                                             std::to_string(max_id_length) + " are allowed");
        }
    } else {
        r.diag().error(n.mark, "stage needs an 'id'");
    }
    if (const yaml_node* use = n.find("use")) {
        s.use_mark = use->mark;
        if (auto v = r.text(*use, "stage 'use'")) s.use = *v;
    } else {
        r.diag().error(n.mark, "stage '" + s.id + "' needs 'use: <kind>.<name>' (see 'shrink plugins')");
    }
    if (const yaml_node* after = n.find("after")) {
        s.has_after = true;
        if (after->is_scalar()) {
            s.after.emplace_back(after->text, after->mark);
        } else if (after->is_sequence()) {
            for (const yaml_node& a : after->items)
                if (auto v = r.text(a, "an 'after' entry")) s.after.emplace_back(*v, a.mark);
        } else {
            r.diag().error(after->mark, "'after' must be a stage id or a list of stage ids");
        }
    }
    if (const yaml_node* params = n.find("params")) {
        s.params_mark = params->mark;
        if (params->is_null()) {
        } else if (r.expect_map(*params, "params")) {
            for (size_t i = 0; i < params->keys.size(); ++i) {
                const yaml_node& v = params->items[i];
                const bool flat_list = v.is_sequence() && std::all_of(v.items.begin(), v.items.end(), [](const yaml_node& x) { return x.is_scalar(); });
                if (!v.is_scalar() && !v.is_null() && !flat_list) {
                    r.diag().error(v.mark, "param '" + params->keys[i].text + "' must be a single value or a list of values");
                    continue;
                }
                stage_param p{params->keys[i].text, params->items[i]};
                p.value.mark = params->items[i].mark;
                s.params.push_back(std::move(p));
            }
        }
    }
    if (const yaml_node* device = n.find("device")) {
        s.device_mark = device->mark;
        if (auto v = r.text(*device, "stage device")) {
            s.device = *v;
            if (!is_device_name(s.device))
                r.diag().error(device->mark, "device must be cpu, cuda, cuda:N or auto, got '" + s.device + "'");
        }
    }
    if (const yaml_node* d = n.find("expected_drop")) s.expected_drop = r.number(*d, "expected_drop", 0.0, 1.0);
}

}  // namespace

recipe parse_recipe(const std::string& path, const std::vector<std::string>& overrides) {
    recipe out;
    out.file = path;
    out.resolved = load_yaml_file(path, recipe_max_bytes);
    for (const std::string& o : overrides) apply_override(out.resolved, o);
    const yaml_node& root = out.resolved;

    diagnostics diag;
    reader r(diag);
    if (!root.is_map()) {
        diag.error(root.mark, "a recipe must be a mapping with version, model and stages; got a " +
                                  std::string(root.kind_name()));
        diag.throw_if_any();
    }
    r.reject_unknown(root, {"version", "name", "seed", "model", "teacher", "data", "device", "budget", "limits", "stages", "output"},
                     "the recipe");

    if (const yaml_node* v = root.find("version")) {
        if (auto n = r.integer(*v, "version", 1, 1000); n && *n != 1)
            diag.error(v->mark, "recipe version " + std::to_string(*n) + " is not supported; this shrink reads version 1");
    } else {
        diag.error(root.mark, "the recipe needs 'version: 1'");
    }
    if (const yaml_node* n = root.find("name")) {
        if (auto v = r.text(*n, "name")) {
            out.name = *v;
            // The name becomes part of the run directory's path: keep it one plain component.
            if (out.name.empty() || out.name[0] == '.' ||
                out.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != std::string::npos)
                diag.error(n->mark, "name '" + shorten(out.name) + "' may use only letters, digits, '_', '-' and '.', and not start with '.'");
            else if (out.name.size() > max_id_length)
                diag.error(n->mark, "name '" + shorten(out.name) + "' is " + std::to_string(out.name.size()) + " characters long; at most " +
                                        std::to_string(max_id_length) + " are allowed");
        }
    }
    if (out.name.empty()) out.name = fs::path(path).stem().string();
    if (const yaml_node* s = root.find("seed"))
        if (auto v = r.integer(*s, "seed", 0, INT64_MAX)) out.seed = static_cast<uint64_t>(*v);

    if (const yaml_node* m = root.find("model")) {
        out.model_mark = m->mark;
        if (auto v = r.text(*m, "model")) {
            out.model = resolve_path(path, *v);
            std::error_code ec;
            if (fs::is_directory(out.model, ec)) {
                if (!fs::is_regular_file(fs::path(out.model) / "config.json", ec))
                    diag.error(m->mark, "model folder '" + out.model + "' has no config.json (a Hugging Face model folder has one)");
            } else if (!fs::is_regular_file(out.model, ec))
                diag.error(m->mark, "model file '" + out.model + "' does not exist" +
                                        (fs::path(*v).filename() == "fmnist-mlp.safetensors"
                                             ? " (make it with 'shrink train', or run scripts/quickstart)"
                                             : ""));
        }
    } else {
        diag.error(root.mark, "the recipe needs 'model: PATH'");
    }

    if (const yaml_node* d = root.find("data")) {
        if (r.expect_map(*d, "data")) {
            r.reject_unknown(*d, {"calibration", "evaluation", "training", "preprocess", "tokenizer"}, "data");
            if (const yaml_node* t = d->find("tokenizer")) {
                out.tokenizer_mark = t->mark;
                if (auto v = r.text(*t, "data.tokenizer")) {
                    out.tokenizer = resolve_path(path, *v);
                    std::error_code ec;
                    if (!fs::exists(out.tokenizer, ec))
                        diag.error(t->mark, "tokenizer '" + out.tokenizer + "' does not exist (give tokenizer.json or the folder holding it)");
                }
            }
            if (const yaml_node* pp = d->find("preprocess"); pp && r.expect_map(*pp, "data.preprocess")) {
                r.reject_unknown(*pp, {"scale", "mean", "std", "layout"}, "data.preprocess");
                out.preprocess.present = true;
                if (const yaml_node* v = pp->find("scale")) out.preprocess.scale = r.number(*v, "data.preprocess.scale", 1e-12, 1e12).value_or(1);
                // A number, or a list with one value per channel.
                auto per_channel = [&](const char* key, double lo, double fallback, std::vector<double>& into) {
                    const yaml_node* v = pp->find(key);
                    if (!v) return;
                    const std::string what = std::string("data.preprocess.") + key;
                    into.clear();
                    if (!v->is_sequence()) {
                        into.push_back(r.number(*v, what, lo, 1e12).value_or(fallback));
                        return;
                    }
                    if (v->items.empty() || v->items.size() > 64)
                        r.diag().error(v->mark, what + " takes a number or a list of 1 to 64 numbers (one per channel)");
                    for (const yaml_node& item : v->items) into.push_back(r.number(item, what, lo, 1e12).value_or(fallback));
                    if (into.empty()) into.push_back(fallback);
                };
                per_channel("mean", -1e12, 0, out.preprocess.mean);
                per_channel("std", 1e-12, 1, out.preprocess.std);
                if (const yaml_node* v = pp->find("layout")) {
                    if (v->is_scalar() && (v->text == "nchw" || v->text == "nhwc")) out.preprocess.layout = v->text;
                    else r.diag().error(v->mark, "data.preprocess.layout must be nchw or nhwc, got '" + v->text + "'");
                }
            }
            if (const yaml_node* c = d->find("calibration")) parse_data_source(r, *c, "data.calibration", path, out.calibration);
            if (const yaml_node* e = d->find("evaluation")) parse_data_source(r, *e, "data.evaluation", path, out.evaluation);
            if (const yaml_node* t = d->find("training")) parse_data_source(r, *t, "data.training", path, out.training);
            const bool text = out.calibration.is_text() || out.evaluation.is_text() || out.training.is_text();
            if (!out.tokenizer.empty() && !text)
                diag.error(out.tokenizer_mark, "data.tokenizer applies to text datasets (kjv, text); this recipe has none");
            // Accuracy measured on the images a stage trained on says nothing about the model.
            if (out.training.present && out.evaluation.present && !out.training.split.empty() &&
                out.training.split == out.evaluation.split && out.training.path == out.evaluation.path)
                diag.error(out.training.mark, "data.training uses the '" + out.training.split +
                                                  "' split, which data.evaluation measures on; train on 'train' and evaluate on 'test'");
        }
    }

    if (const yaml_node* dev = root.find("device")) {
        out.device_mark = dev->mark;
        if (auto v = r.text(*dev, "device")) {
            out.device = *v;
            if (!is_device_name(out.device))
                diag.error(dev->mark, "device must be cpu, cuda, cuda:N or auto, got '" + out.device + "'");
        }
    }

    if (const yaml_node* t = root.find("teacher")) {
        out.teacher_mark = t->mark;
        if (auto v = r.text(*t, "teacher")) {
            out.teacher = resolve_path(path, *v);
            std::error_code ec;
            if (!fs::is_regular_file(out.teacher, ec)) diag.error(t->mark, "teacher model file '" + out.teacher + "' does not exist");
        }
    }

    if (const yaml_node* b = root.find("budget")) {
        out.budget.present = true;
        out.budget.mark = b->mark;
        if (r.expect_map(*b, "budget")) {
            r.reject_unknown(*b, {"metric", "max_drop", "max_abs_drop", "max_increase", "max_abs_increase", "direction", "interaction_penalty"},
                             "budget");
            if (const yaml_node* m = b->find("metric"))
                if (auto v = r.text(*m, "budget.metric")) out.budget.metric = *v;
            if (const yaml_node* m = b->find("max_drop")) out.budget.max_drop = r.number(*m, "budget.max_drop", 0.0, 1.0);
            if (const yaml_node* m = b->find("max_abs_drop"))
                out.budget.max_abs_drop = r.number(*m, "budget.max_abs_drop", 0.0, 1e300);
            // The spellings for lower-is-better metrics (perplexity may rise by max_increase,
            // relative: 0.05 is 5%, 1 is doubling); checked against the direction below.
            if (const yaml_node* m = b->find("max_increase")) out.budget.max_drop = r.number(*m, "budget.max_increase", 0.0, 1e6);
            if (const yaml_node* m = b->find("max_abs_increase"))
                out.budget.max_abs_drop = r.number(*m, "budget.max_abs_increase", 0.0, 1e300);
            for (const auto& [drop, increase] : {std::pair{"max_drop", "max_increase"}, std::pair{"max_abs_drop", "max_abs_increase"}})
                if (b->find(drop) && b->find(increase))
                    diag.error(b->find(increase)->mark, std::string("budget gives both '") + drop + "' and '" + increase +
                                                            "', two spellings of one bound: keep one");
            if (!b->find("max_drop") && !b->find("max_abs_drop") && !b->find("max_increase") && !b->find("max_abs_increase"))
                diag.error(b->mark, "budget needs 'max_drop' (a fraction of the baseline, e.g. 0.02) or 'max_abs_drop' (metric units); "
                                    "for a lower-is-better metric such as perplexity, 'max_increase' or 'max_abs_increase'");
            if (const yaml_node* p = b->find("interaction_penalty"))
                if (auto v = r.number(*p, "budget.interaction_penalty", 0.0, 10.0)) out.budget.interaction_penalty = *v;
            static const std::vector<std::string> higher{"accuracy", "top1", "top5", "f1", "precision", "recall", "auc", "bleu"};
            static const std::vector<std::string> lower{"perplexity", "loss", "error", "wer", "cer", "mse", "mae"};
            const std::string& metric = out.budget.metric;
            if (const yaml_node* d = b->find("direction")) {
                if (auto v = r.text(*d, "budget.direction")) {
                    if (*v != "higher_is_better" && *v != "lower_is_better")
                        diag.error(d->mark, "budget.direction must be higher_is_better or lower_is_better, got '" + *v + "'");
                    out.budget.higher_is_better = *v == "higher_is_better";
                }
            } else if (std::find(lower.begin(), lower.end(), metric) != lower.end()) {
                out.budget.higher_is_better = false;
            } else if (std::find(higher.begin(), higher.end(), metric) == higher.end()) {
                diag.error(b->mark, "budget metric '" + metric +
                                        "' is not one shrink knows the direction of; add direction: higher_is_better or lower_is_better");
            }
            if (out.budget.higher_is_better)
                for (const auto& [increase, drop] : {std::pair{"max_increase", "max_drop"}, std::pair{"max_abs_increase", "max_abs_drop"}})
                    if (const yaml_node* m = b->find(increase))
                        diag.error(m->mark, std::string("budget.") + increase + " is for lower-is-better metrics (perplexity, loss); " + metric +
                                                " is higher-is-better: use " + drop);
        }
    }

    if (const yaml_node* l = root.find("limits")) {
        out.limits_mark = l->mark;
        if (r.expect_map(*l, "limits")) {
            r.reject_unknown(*l, {"memory"}, "limits");
            if (const yaml_node* m = l->find("memory")) {
                out.limits_mark = m->mark;
                const auto bytes = m->is_scalar() ? parse_byte_size(m->text) : std::nullopt;
                if (!bytes || *bytes == 0)
                    diag.error(m->mark, "limits.memory must be a size like 8GiB, 512MiB or 2GB, got '" + m->text + "'");
                else
                    out.memory_limit = bytes;
            }
        }
    }

    if (const yaml_node* st = root.find("stages")) {
        if (!st->is_sequence()) {
            diag.error(st->mark, "stages must be a list, got a " + std::string(st->kind_name()));
        } else {
            if (st->items.empty()) diag.error(st->mark, "stages is empty: a recipe needs at least one stage");
            for (const yaml_node& item : st->items) {
                stage_spec s;
                parse_stage(r, item, s);
                out.stages.push_back(std::move(s));
            }
        }
    } else {
        diag.error(root.mark, "the recipe needs 'stages:' (a list)");
    }

    if (const yaml_node* o = root.find("output")) {
        if (r.expect_map(*o, "output")) {
            r.reject_unknown(*o, {"format"}, "output");
            if (const yaml_node* f = o->find("format"))
                if (auto v = r.text(*f, "output.format")) {
                    out.output_format = *v;
                    if (*v != "safetensors" && *v != "onnx")
                        diag.error(f->mark, "output.format must be safetensors or onnx, got '" + *v + "'" + did_you_mean(*v, {"safetensors", "onnx"}));
                }
        }
    }

    // The resolved recipe (written into run directories) names files absolutely, so it
    // means the same wherever it is read from.
    auto absolute = [](yaml_node* n, const std::string& value) {
        if (n && n->is_scalar() && !value.empty()) {
            n->text = value;
            n->quoted = true;
        }
    };
    absolute(out.resolved.find("model"), out.model);
    absolute(out.resolved.find("teacher"), out.teacher);
    if (yaml_node* d = out.resolved.find("data"); d && d->is_map()) {
        absolute(d->find("tokenizer"), out.tokenizer);
        if (yaml_node* c = d->find("calibration"); c && c->is_map()) absolute(c->find("path"), out.calibration.path);
        if (yaml_node* e = d->find("evaluation"); e && e->is_map()) absolute(e->find("path"), out.evaluation.path);
        if (yaml_node* t = d->find("training"); t && t->is_map()) absolute(t->find("path"), out.training.path);
    }

    // Without a budget nothing is judged, but the report still names the metric each
    // evaluator measured: a recipe that measures only perplexity reports perplexity.
    if (!out.budget.present) {
        auto uses = [&](const char* type) {
            return std::any_of(out.stages.begin(), out.stages.end(), [&](const stage_spec& s) { return s.use == type; });
        };
        if (uses("evaluator.perplexity") && !uses("evaluator.accuracy")) {
            out.budget.metric = "perplexity";
            out.budget.higher_is_better = false;
        }
    }

    std::set<std::string> seen;
    for (const stage_spec& s : out.stages)
        if (!s.id.empty() && !seen.insert(s.id).second) diag.error(s.id_mark, "duplicate stage id '" + s.id + "'");

    diag.throw_if_any();
    return out;
}

std::optional<uint64_t> parse_byte_size(const std::string& text) {
    size_t end = 0;
    while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) ++end;
    const auto number = parse_finite_double(text.substr(0, end));
    std::string unit = text.substr(end);
    while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
    static const std::vector<std::pair<std::string, double>> units{
        {"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
        {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
    if (!number || *number < 0) return std::nullopt;
    for (const auto& [name, factor] : units)
        if (unit == name) {
            const double bytes = *number * factor;
            if (bytes > 1.8e19) return std::nullopt;
            return static_cast<uint64_t>(bytes);
        }
    return std::nullopt;
}

namespace {
void emit(std::ostringstream& out, const yaml_node& n, int indent) {
    const std::string pad(static_cast<size_t>(indent), ' ');
    auto scalar = [](const yaml_node& s) {
        if (s.is_null()) return std::string("null");
        std::string q = "\"";
        for (char c : s.text) q += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
        return s.quoted ? q + "\"" : s.text;
    };
    if (n.is_map()) {
        for (size_t i = 0; i < n.keys.size(); ++i) {
            const yaml_node& v = n.items[i];
            out << pad << n.keys[i].text << ":";
            if ((v.is_map() && !v.keys.empty()) || (v.is_sequence() && !v.items.empty())) {
                out << "\n";
                emit(out, v, indent + 2);
            } else {
                out << " " << (v.is_map() ? "{}" : v.is_sequence() ? "[]" : scalar(v)) << "\n";
            }
        }
    } else if (n.is_sequence()) {
        for (const yaml_node& v : n.items) {
            if (v.is_map() || v.is_sequence()) {
                std::ostringstream inner;
                emit(inner, v, indent + 2);
                std::string text = inner.str();
                out << pad << "- " << text.substr(static_cast<size_t>(indent) + 2);
            } else {
                out << pad << "- " << scalar(v) << "\n";
            }
        }
    } else {
        out << pad << scalar(n) << "\n";
    }
}
}  // namespace

std::string data_source::identity() const {
    std::string text = dataset;
    text.append("/").append(split).append("/").append(std::to_string(samples)).append("/").append(path);
    if (is_text()) text.append("/seq_len=").append(std::to_string(seq_len));
    return text;
}

std::string to_yaml(const yaml_node& node) {
    std::ostringstream out;
    emit(out, node, 0);
    return out.str();
}

}  // namespace shrink
