#include "indexer/lanes.h"

#include <thread>

namespace clipfind {

std::exception_ptr run_encoders(std::vector<Lane>& lanes, bool behind_decoders,
                                const std::function<void()>& close_all) {
  std::vector<std::exception_ptr> errors(lanes.size());
  auto run = [&](size_t l) {
    try {
      Encoder& e = *lanes[l].encoder;
      if (behind_decoders)
        on_thread_behind_decoders([&] { e.run(); });
      else
        e.run();
      if (e.lost().empty()) close_all();
    } catch (...) {
      errors[l] = std::current_exception();
      close_all();
    }
  };
  std::vector<std::thread> others;
  for (size_t l = 1; l < lanes.size(); ++l) {
    others.emplace_back([&, l] {
      name_this_thread("cf-lane");
      run(l);
    });
  }
  run(0);
  for (auto& t : others) t.join();
  for (const auto& e : errors) {
    if (e) return e;
  }
  return nullptr;
}

}  // namespace clipfind
