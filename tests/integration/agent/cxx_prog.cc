// C++ new/delete reach the agent through malloc: checked exactly at
// FNPROF_RATE=1 (every allocation recorded).
#include "check.h"

#include <memory>
#include <string>
#include <vector>

struct Node {
  char payload[200];
};

extern "C" __attribute__((noinline)) Node *cxx_new_node() { return new Node(); }

extern "C" __attribute__((noinline)) std::vector<int> *cxx_vector(size_t n) {
  auto *v = new std::vector<int>();
  v->reserve(n); // one allocation of n ints
  return v;
}

int main() {
  std::vector<std::unique_ptr<Node>> nodes;
  nodes.reserve(1000);
  for (int i = 0; i < 1000; i++)
    nodes.emplace_back(cxx_new_node());
  std::vector<int> *v = cxx_vector(100000);
  for (int i = 0; i < 500; i++) // delete half: the agent must see it
    nodes[static_cast<size_t>(i)].reset();
  pprof_profile *p = agent_profile(FNPROF_PROFILE_FINAL);
  CHECK(site_total(p, "inuse_space", "cxx_new_node") == 500 * sizeof(Node));
  CHECK(site_total(p, "alloc_objects", "cxx_new_node") == 1000);
  CHECK(site_total(p, "inuse_space", "cxx_vector") ==
        static_cast<int64_t>(sizeof(std::vector<int>) + 100000 * sizeof(int)));
  pprof_profile_free(p);
  delete v;
  return 0;
}
