// clipfind: find moments in videos and images by describing them.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "app/commands.h"
#include "clip/error.h"

namespace {

// Exit statuses, the same for every command (README, --help's footer).
constexpr int kExitFailed = 1;  // the command ran and failed (a bad file, a missing index ...)
constexpr int kExitUsage = 2;   // the command line is wrong; nothing was done
constexpr const char* kExitHelp =
    "Exit status: 0 done (also when nothing matches), 1 failed, 2 usage error (a wrong command line).";

// Levenshtein distance, for "did you mean" (names are short).
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// "; did you mean 'search'?" for the name closest to `given` within two
// edits (and fewer than its length), else "".
std::string did_you_mean(const std::string& given, const std::vector<std::string>& names) {
  std::string best;
  size_t best_d = 3;
  for (const auto& n : names) {
    const size_t d = edit_distance(given, n);
    if (d < best_d && d < given.size()) best = n, best_d = d;
  }
  return best.empty() ? "" : "; did you mean '" + best + "'?";
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

bool looks_like_option(const std::string& arg) {
  return arg.size() > 1 && arg[0] == '-' && !(std::isdigit(static_cast<unsigned char>(arg[1])) || arg[1] == '.');
}

// What is wrong with a command line CLI11 rejected, in one line naming the
// command, the unknown word and the nearest right one.
std::string usage_error(const CLI::App& root, const CLI::ParseError& e) {
  std::vector<std::string> commands;
  for (const CLI::App* sub : root.get_subcommands([](const CLI::App*) { return true; })) {
    commands.push_back(sub->get_name());
  }
  const auto parsed = root.get_subcommands();
  if (parsed.empty()) {
    for (const auto& arg : root.remaining()) {
      if (looks_like_option(arg)) return "unknown option '" + arg + "' (see 'clipfind --help')";
      return "unknown command '" + arg + "'" + did_you_mean(arg, commands) + " (commands: " + joined(commands) + ")";
    }
    return "missing command: clipfind " + std::string("{") + joined(commands) + "} ... (see 'clipfind --help')";
  }
  const CLI::App& cmd = *parsed.front();
  const std::string see = " (see 'clipfind " + cmd.get_name() + " --help')";
  const auto rest = cmd.remaining();
  // An unknown option comes first: a typo'd option that takes a value
  // (`--indx IDX "a red circle"`) leaves the query as an extra word, which
  // is not what went wrong.
  for (const auto& arg : rest) {
    if (!looks_like_option(arg)) continue;
    const std::string name = arg.substr(0, arg.find('='));
    std::vector<std::string> options;
    for (const CLI::Option* opt : cmd.get_options()) {
      for (const auto& l : opt->get_lnames()) options.push_back("--" + l);
      for (const auto& s : opt->get_snames()) options.push_back("-" + s);
    }
    return "unknown option '" + name + "' for '" + cmd.get_name() + "'" + did_you_mean(name, options) + see;
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&e) && !rest.empty()) {
    return "unexpected argument '" + rest.front() + "' for '" + cmd.get_name() + "'" + see;
  }
  return cmd.get_name() + ": " + e.what() + see;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App root{"clipfind: CLIP embeddings and search over videos and images"};
  root.require_subcommand(1);
  root.set_version_flag("--version", std::string("clipfind ") + clipfind::kVersion);
  std::vector<clipfind::Command> commands = {
      clipfind::add_embed_command(root),  clipfind::add_tokenize_command(root), clipfind::add_index_command(root),
      clipfind::add_search_command(root), clipfind::add_merge_command(root),    clipfind::add_info_command(root),
      clipfind::add_frame_command(root),  clipfind::add_serve_command(root),    clipfind::add_doctor_command(root),
  };
  root.footer(kExitHelp);
  for (const auto& c : commands) c.app->footer(c.app->get_footer() + "\n" + kExitHelp);
  try {
    root.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return root.exit(e);  // --help, --version
    std::fprintf(stderr, "clipfind: error: %s\n", usage_error(root, e).c_str());
    return kExitUsage;
  }
  try {
    for (const auto& c : commands) {
      if (c.app->parsed()) return c.run();
    }
  } catch (const clip::Error& e) {
    std::fprintf(stderr, "clipfind: error: %s\n", e.what());
    return kExitFailed;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "clipfind: error: out of memory\n");
    return kExitFailed;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clipfind: error: %s\n", e.what());
    return kExitFailed;
  }
  return kExitFailed;
}
