#include "recipe/yaml_tree.hpp"

#include "util/files.hpp"
#include "util/text.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <sstream>

namespace shrink {

const yaml_node* yaml_node::find(const std::string& key) const {
    for (size_t i = 0; i < keys.size(); ++i)
        if (keys[i].text == key) return &items[i];
    return nullptr;
}

yaml_node* yaml_node::find(const std::string& key) {
    return const_cast<yaml_node*>(static_cast<const yaml_node*>(this)->find(key));
}

const char* yaml_node::kind_name() const {
    switch (kind) {
        case kind_t::null: return "null";
        case kind_t::scalar: return "scalar";
        case kind_t::sequence: return "list";
        case kind_t::map: return "mapping";
    }
    return "?";
}

namespace {

constexpr size_t max_depth = 64;

class tree_builder : public YAML::EventHandler {
  public:
    explicit tree_builder(std::string file) : file_(std::move(file)) {}

    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}

    void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
        check_anchor(mark, anchor);
        yaml_node n;
        n.mark = to_mark(mark);
        add(std::move(n));
    }
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
        fail(mark, "aliases (*name) are not allowed in recipes; write the value out");
    }
    void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  const std::string& value) override {
        check_anchor(mark, anchor);
        yaml_node n;
        n.kind = yaml_node::kind_t::scalar;
        n.text = value;
        n.quoted = tag == "!";  // yaml-cpp tags non-plain scalars "!" and plain ones "?"
        if (!tag.empty() && tag != "!" && tag != "?") fail(mark, "YAML tags ('" + tag + "') are not allowed in recipes");
        n.mark = to_mark(mark);
        add(std::move(n));
    }
    void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value) override {
        open(mark, anchor, yaml_node::kind_t::sequence);
    }
    void OnSequenceEnd() override { close(); }
    void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value) override {
        open(mark, anchor, yaml_node::kind_t::map);
    }
    void OnMapEnd() override { close(); }

    yaml_node take_root() {
        if (!has_root_) {
            yaml_node n;
            n.mark = {file_, 1, 1};
            return n;
        }
        return std::move(root_);
    }

  private:
    struct frame {
        yaml_node node;
        bool expecting_key = true;  // maps alternate key, value
    };

    source_mark to_mark(const YAML::Mark& m) const { return {file_, m.line + 1, m.column + 1}; }
    [[noreturn]] void fail(const YAML::Mark& m, const std::string& message) const {
        throw input_error(to_mark(m), message);
    }
    void check_anchor(const YAML::Mark& m, YAML::anchor_t anchor) const {
        if (anchor != YAML::NullAnchor) fail(m, "anchors (&name) are not allowed in recipes; write the value out");
    }

    void open(const YAML::Mark& mark, YAML::anchor_t anchor, yaml_node::kind_t kind) {
        check_anchor(mark, anchor);
        if (stack_.size() >= max_depth) fail(mark, "nesting deeper than " + std::to_string(max_depth) + " levels");
        frame f;
        f.node.kind = kind;
        f.node.mark = to_mark(mark);
        stack_.push_back(std::move(f));
    }

    void close() {
        yaml_node done = std::move(stack_.back().node);
        stack_.pop_back();
        add(std::move(done));
    }

    void add(yaml_node n) {
        if (stack_.empty()) {
            root_ = std::move(n);
            has_root_ = true;
            return;
        }
        frame& top = stack_.back();
        if (top.node.kind == yaml_node::kind_t::sequence) {
            top.node.items.push_back(std::move(n));
            return;
        }
        if (top.expecting_key) {
            if (n.kind != yaml_node::kind_t::scalar)
                throw input_error(n.mark, "mapping keys must be plain words, not a " + std::string(n.kind_name()));
            for (const yaml_node& k : top.node.keys)
                if (k.text == n.text)
                    throw input_error(n.mark, "duplicate key '" + n.text + "' (first at line " +
                                                  std::to_string(k.mark.line) + ")");
            top.node.keys.push_back(std::move(n));
        } else {
            top.node.items.push_back(std::move(n));
        }
        top.expecting_key = !top.expecting_key;
    }

    std::string file_;
    std::vector<frame> stack_;
    yaml_node root_;
    bool has_root_ = false;
};

}  // namespace

yaml_node parse_yaml(const std::string& text, const std::string& file) {
    std::istringstream in(text);
    tree_builder builder(file);
    try {
        YAML::Parser parser(in);
        parser.HandleNextDocument(builder);
        yaml_node root = builder.take_root();
        tree_builder rest(file);
        if (parser.HandleNextDocument(rest)) throw input_error(source_mark{file, 0, 0}, "more than one YAML document");
        return root;
    } catch (const YAML::Exception& e) {
        throw input_error(source_mark{file, e.mark.line + 1, e.mark.column + 1}, "YAML syntax: " + e.msg);
    }
}

yaml_node load_yaml_file(const std::string& path, uint64_t max_bytes) {
    const std::string text = read_input_file(path, max_bytes);
    return parse_yaml(text, path);
}

void apply_override(yaml_node& root, const std::string& assignment) {
    const size_t eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0)
        throw usage_error("--set expects KEY=VALUE (e.g. stages.int8.params.bits=4), got '" + assignment + "'");
    // Recipe keys are a few levels deep (stages.ID.params.NAME): a longer path can only be
    // a mistake, and each new level would copy the assignment into its mark.
    constexpr size_t max_segments = 16;
    if (size_t(std::count(assignment.begin(), assignment.begin() + long(eq), '.')) >= max_segments)
        throw usage_error("--set " + assignment.substr(0, std::min<size_t>(eq, 80)) + "...: more than " + std::to_string(max_segments) +
                          " key segments; recipe keys are at most 5 deep");
    const std::vector<std::string> path = split(assignment.substr(0, eq), '.');
    const source_mark where{"--set " + assignment, 0, 0};
    yaml_node value = parse_yaml(assignment.substr(eq + 1), where.file);
    if (value.is_map() || value.is_sequence()) throw usage_error("--set " + assignment + ": the value must be a single value");

    yaml_node* node = &root;
    for (const std::string& segment : path) {
        if (segment.empty()) throw usage_error("--set " + assignment + ": empty key segment");
        if (node->is_sequence()) {
            yaml_node* next = nullptr;
            for (yaml_node& item : node->items)
                if (const yaml_node* id = item.find("id"); id && id->text == segment) next = &item;
            if (!next) throw usage_error("--set " + assignment + ": no list item with id '" + segment + "'");
            node = next;
            continue;
        }
        if (node->is_null()) node->kind = yaml_node::kind_t::map;
        if (!node->is_map()) throw usage_error("--set " + assignment + ": '" + segment + "' is inside a plain value");
        yaml_node* next = node->find(segment);
        if (!next) {
            yaml_node key;
            key.kind = yaml_node::kind_t::scalar;
            key.text = segment;
            key.mark = where;
            node->keys.push_back(key);
            node->items.emplace_back();
            node->items.back().mark = where;
            next = &node->items.back();
        }
        node = next;
    }
    value.mark = where;
    *node = std::move(value);
}

}  // namespace shrink
