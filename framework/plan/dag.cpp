// Pass: the stage DAG: parents from `after` (or list order), no cycles, execution order.
#include "plan/passes.hpp"

#include "util/text.hpp"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/depth_first_search.hpp>
#include <boost/graph/topological_sort.hpp>

#include <map>

namespace shrink {

namespace {

/// Records the cycle a back edge closes, following single parents.
struct cycle_finder : boost::default_dfs_visitor {
    std::vector<int>* cycle_start;
    explicit cycle_finder(std::vector<int>* out) : cycle_start(out) {}
    template <class Edge, class Graph>
    void back_edge(Edge e, const Graph& g) {
        if (cycle_start->empty()) {
            cycle_start->push_back(int(boost::source(e, g)));
            cycle_start->push_back(int(boost::target(e, g)));
        }
    }
};

}  // namespace

void build_dag(plan& p, plan_inputs& in) {
    const recipe& r = in.r;
    diagnostics& diag = in.diag;
    const size_t n = p.stages.size();
    std::map<std::string, int> index;
    for (size_t i = 0; i < n; ++i) index.emplace(r.stages[i].id, int(i));
    std::vector<std::string> ids;
    for (const stage_spec& s : r.stages) ids.push_back(s.id);

    // Parents: `after`, else the previous list entry, else the model.
    for (size_t i = 0; i < n; ++i) {
        const stage_spec& s = r.stages[i];
        planned_stage& st = p.stages[i];
        if (!s.has_after) {
            st.parent = int(i) - 1;
            continue;
        }
        if (s.after.size() > 1)
            diag.error(s.after[1].second, "stage '" + s.id + "' lists " + std::to_string(s.after.size()) +
                                              " parents; a stage takes its model from exactly one stage");
        if (s.after.empty()) {
            st.parent = -1;
            continue;
        }
        auto it = index.find(s.after[0].first);
        if (it == index.end())
            diag.error(s.after[0].second, "stage '" + s.id + "' runs after unknown stage '" + s.after[0].first + "'" +
                                              did_you_mean(s.after[0].first, ids));
        else if (it->second == int(i))
            diag.error(s.after[0].second, "stage '" + s.id + "' cannot run after itself");
        else
            st.parent = it->second;
    }
    diag.throw_if_any();

    using graph_t = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;
    graph_t g(n);
    for (size_t i = 0; i < n; ++i)
        if (p.stages[i].parent >= 0) {
            boost::add_edge(size_t(p.stages[i].parent), i, g);
            p.stages[size_t(p.stages[i].parent)].children.push_back(int(i));
        }
    std::vector<int> back;
    boost::depth_first_search(g, boost::visitor(cycle_finder(&back)));
    if (!back.empty()) {
        // back = {u, v} with edge u -> v closing the loop; walk parents from u up to v.
        std::vector<std::string> names{r.stages[size_t(back[1])].id};
        std::vector<std::string> chain;
        for (int at = back[0]; at != back[1]; at = p.stages[size_t(at)].parent) chain.push_back(r.stages[size_t(at)].id);
        names.insert(names.end(), chain.rbegin(), chain.rend());
        names.push_back(r.stages[size_t(back[1])].id);
        std::string text;
        for (const std::string& s : names) text += (text.empty() ? "" : " -> ") + s;
        const stage_spec& at = r.stages[size_t(back[1])];
        diag.error(at.after.empty() ? at.mark : at.after[0].second, "the stages form a cycle: " + text);
        diag.throw_if_any();
    }
    std::vector<size_t> reversed;
    boost::topological_sort(g, std::back_inserter(reversed));
    for (auto it = reversed.rbegin(); it != reversed.rend(); ++it) p.order.push_back(int(*it));
}

}  // namespace shrink
