// clipfind: find moments in videos and images by describing them.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "app/commands.h"
#include "clip/error.h"

int main(int argc, char** argv) {
  CLI::App root{"clipfind: CLIP embeddings and search over videos and images"};
  root.require_subcommand(1);
  root.set_version_flag("--version", std::string("clipfind ") + clipfind::kVersion);
  std::vector<clipfind::Command> commands = {
      clipfind::add_embed_command(root),
      clipfind::add_tokenize_command(root),
      clipfind::add_index_command(root),
      clipfind::add_search_command(root),
      clipfind::add_frame_command(root),
      clipfind::add_serve_command(root),
      clipfind::add_doctor_command(root),
  };
  try {
    root.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return root.exit(e);
  }
  try {
    for (const auto& c : commands) {
      if (c.app->parsed()) return c.run();
    }
  } catch (const clip::Error& e) {
    std::fprintf(stderr, "clipfind: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "clipfind: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clipfind: error: %s\n", e.what());
    return 1;
  }
  return 1;
}
