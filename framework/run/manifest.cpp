#include "run/manifest.hpp"
#include "util/machine.hpp"

#include "cpu/matmul.hpp"
#include "cpu/threading.hpp"
#include "util/files.hpp"
#include "version.hpp"

#include <boost/version.hpp>
#include <oneapi/tbb/version.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>

namespace shrink {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string utc_now(const char* format) {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

run_inputs gather_run_inputs(const plan& p, const data_access& data) {
    const recipe& r = *p.source;
    run_inputs inputs;
    for (const std::string& f : data.files()) {
        inputs.data_files.emplace_back(f, sha256_file(f));
        inputs.data_hash_text += f + "=" + inputs.data_files.back().second + "\n";
    }
    for (const data_source* d : {&r.calibration, &r.evaluation, &r.training})
        if (d->present) inputs.data_hash_text += (d->is_text() ? d->identity() : d->split + "/" + std::to_string(d->samples)) + "\n";
    if (!r.teacher.empty()) inputs.data_hash_text += "teacher=" + sha256_file(r.teacher) + "\n";
    for (const planned_stage& st : p.stages)
        if (!inputs.plugin_sha.count(st.type->plugin.get())) inputs.plugin_sha[st.type->plugin.get()] = sha256_file(st.type->plugin->file);
    return inputs;
}

json start_manifest(const plan& p, const registry& plugins, const data_access& data, run_inputs& inputs) {
    const recipe& r = *p.source;
    inputs = gather_run_inputs(p, data);
    json manifest;
    manifest["status"] = "running";
    manifest["shrink_version"] = shrink_version;
    manifest["started"] = utc_now();
    manifest["recipe"] = {{"file", fs::absolute(r.file).string()}, {"sha256", sha256_file(r.file)},
                          {"resolved_sha256", sha256_hex(to_yaml(r.resolved))}};
    manifest["model"] = {{"file", r.model}, {"sha256", p.model_sha256}};
    if (!r.teacher.empty()) manifest["teacher"] = {{"file", r.teacher}, {"sha256", sha256_file(r.teacher)}};
    json data_files = json::array();
    for (const auto& [file, sha] : inputs.data_files) data_files.push_back({{"file", file}, {"sha256", sha}});
    manifest["data"] = data_files;
    manifest["seed"] = r.seed;
    manifest["threads"] = cpu::thread_count();
    manifest["device"] = r.device;  // as the recipe asks; each stage's resolved device follows
    json stage_devices = json::object();
    for (const planned_stage& st : p.stages) stage_devices[st.spec->id] = st.device;
    manifest["stage_devices"] = stage_devices;
    manifest["host_cpu"] = cpu_model();
    manifest["libraries"] = {{"onednn", cpu::onednn_version()}, {"tbb", TBB_VERSION_STRING},
                             {"boost", BOOST_LIB_VERSION}, {"yaml-cpp", shrink_yaml_cpp_version},
                             {"nlohmann_json", std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." + std::to_string(NLOHMANN_JSON_VERSION_MINOR) + "." + std::to_string(NLOHMANN_JSON_VERSION_PATCH)}};
    json plugin_list = json::array();
    for (const auto& pl : plugins.plugins()) {
        json types = json::array();
        for (const planned_stage& st : p.stages)
            if (st.type->plugin == pl && std::find(types.begin(), types.end(), st.spec->use) == types.end()) types.push_back(st.spec->use);
        if (types.empty()) continue;
        plugin_list.push_back({{"name", pl->name}, {"version", pl->version}, {"file", pl->file}, {"sha256", inputs.plugin_sha[pl.get()]},
                               {"types", types}});
    }
    manifest["plugins"] = plugin_list;
    return manifest;
}

std::string stage_key(const planned_stage& st, const std::string& parent, const run_inputs& inputs) {
    std::string text = std::string("shrink ") + shrink_version + "\nstore=2\nthreads=" + std::to_string(cpu::thread_count()) +
                       "\nparent=" + parent + "\ntype=" + st.spec->use + "\nplugin=" + inputs.plugin_sha.at(st.type->plugin.get()) +
                       "\nseed=" + std::to_string(st.seed) + "\ndevice=" + st.device + "\ndata=" + inputs.data_hash_text;
    for (const resolved_param& rp : st.params) text += "\nparam " + rp.name + "=" + rp.text;
    return sha256_hex(text);
}

std::vector<std::string> stage_keys(const plan& p, const run_inputs& inputs) {
    std::vector<std::string> keys(p.stages.size());
    for (int i : p.order) {
        const planned_stage& st = p.stages[size_t(i)];
        keys[size_t(i)] = stage_key(st, st.parent < 0 ? "model:" + p.model_sha256 : keys[size_t(st.parent)], inputs);
    }
    return keys;
}

}  // namespace shrink
