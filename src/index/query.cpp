#include "index/query.h"

#include <fnmatch.h>

#include <filesystem>
#include <stdexcept>

#include "index/fingerprint.h"

namespace clipfind::index {

std::string query_model(const Catalog& cat, const std::string& model_dir) {
  const std::string name = cat.dir().string();
  const auto stored_fp = cat.meta("model");
  if (!stored_fp) throw std::runtime_error(name + ": the index is empty (run `clipfind index` first)");
  const std::string dir = model_dir.empty() ? cat.meta("model_path").value_or("") : model_dir;
  const std::string fp = model_fingerprint(dir);  // first: it names a folder that holds no model
  if (const std::string wrong = family_mismatch(cat, dir); !wrong.empty()) {
    const std::string built_with = cat.meta("model_path").value_or("");
    const std::string advice = model_dir.empty() || built_with.empty() || built_with == dir
                                   ? ""
                                   : "leave out --model to search with the index's own model, or ";
    throw std::runtime_error(wrong + ". Embeddings of different model families cannot be compared: " + advice +
                             "rebuild the index with `clipfind index --reindex --model " + dir + "`");
  }
  if (fp != *stored_fp) {
    throw std::runtime_error(name + ": built with model fingerprint " + *stored_fp + " but " + dir + " has " + fp +
                             " (rebuild with `clipfind index --reindex --model " + dir + "`)");
  }
  return dir;
}

std::string family_mismatch(const Catalog& cat, const std::string& model_dir) {
  const auto model = cat.model();
  if (!model) return "";
  const std::string family = model_family(model_dir);
  if (family.empty() || family == model->family) return "";
  const std::string index = cat.dir().string() + ": built with a " + model->family + " model";
  // The same folder: its model was replaced since.
  std::error_code ec;
  if (model->path == model_dir || std::filesystem::equivalent(model->path, model_dir, ec))
    return index + " from " + model_dir + ", which now holds a " + family + " model";
  const std::string built_with = model->path.empty() ? "" : " (" + model->path + ")";
  return index + built_with + " but " + model_dir + " is a " + family + " model";
}

bool has_probabilities(const ModelRecord& model) {
  return model.family == "siglip" && model.logit_scale && model.logit_bias;
}

void add_probabilities(std::vector<Segment>& segments, const ModelRecord& model) {
  if (!has_probabilities(model)) return;
  for (auto& s : segments) s.probability = match_probability(s.score, *model.logit_scale, *model.logit_bias);
}

std::string precision_note(const Catalog& cat, const std::string& query_precision) {
  const std::vector<std::string> built = cat.precisions();
  if (built.empty() || (built.size() == 1 && built[0] == query_precision)) return "";
  std::string list;
  for (const auto& p : built) list += (list.empty() ? "" : " and ") + p;
  std::string note = cat.dir().string() + " was indexed in " + list + " but this query runs in " + query_precision +
                     ": the scores still compare, but shift slightly";
  if (built.size() == 1) note += " (--precision " + built[0] + " matches the index)";
  return note;
}

double default_gap(const Catalog& cat) { return 2.0 * std::stod(cat.meta("interval").value_or("1")); }

bool video_matches(const std::string& glob, const std::string& path) {
  if (fnmatch(glob.c_str(), path.c_str(), 0) == 0) return true;
  // Every trailing part that starts after a '/': "c.mp4", "b/c.mp4", ... of "/a/b/c.mp4".
  for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    if (slash + 1 < path.size() && fnmatch(glob.c_str(), path.c_str() + slash + 1, 0) == 0) return true;
  }
  return false;
}

namespace {

std::string file_name(const VideoRecord& v) { return std::filesystem::path(v.path).filename().string(); }

// "a.mp4, b.mp4 and 3 more": at most `shown` names, with `describe` for each.
std::string list_videos(const std::vector<const VideoRecord*>& videos,
                        const std::function<std::string(const VideoRecord&)>& describe) {
  constexpr size_t shown = 8;  // one readable line, not a catalog dump
  std::string out;
  for (size_t i = 0; i < videos.size() && i < shown; ++i) out += (i ? ", " : "") + describe(*videos[i]);
  if (videos.size() > shown) out += " and " + std::to_string(videos.size() - shown) + " more";
  return out;
}

}  // namespace

std::string why_nothing_found(const std::vector<VideoRecord>& videos,
                              const std::function<bool(const VideoRecord&)>& chosen, const std::string& filter) {
  if (videos.empty()) return "the index is empty (run `clipfind index` first)";
  std::vector<const VideoRecord*> all, kept;
  for (const auto& v : videos) {
    all.push_back(&v);
    if (chosen(v)) kept.push_back(&v);
  }
  if (kept.empty()) return filter + " matches none of the indexed videos: " + list_videos(all, file_name);
  for (const auto* v : kept) {
    if (v->status == "ok" && v->frames > 0) return "";
  }
  const std::string matched = filter.empty() ? "" : " matching " + filter;
  const std::string which = kept.size() == 1
                                ? "the only video" + matched + " has"
                                : "none of the " + std::to_string(kept.size()) + " videos" + matched + " has";
  return which + " no frames to search: " + list_videos(kept, [](const VideoRecord& v) {
           if (v.status == "ok") return file_name(v) + " (no frames sampled)";
           // Errors name the file: once is enough here.
           std::string why = v.error.empty() ? v.status : v.error;
           if (why.rfind(v.path + ": ", 0) == 0) why.erase(0, v.path.size() + 2);
           return file_name(v) + " failed to index (" + why + ")";
         });
}

FrameTable select_videos(const FrameTable& table, const std::function<bool(int64_t)>& keep) {
  FrameTableBuilder kept(table.dim);
  // Rows of one video are contiguous: ask `keep` once per run of rows.
  for (size_t r = 0; r < table.rows();) {
    size_t end = r;
    while (end < table.rows() && table.video[end] == table.video[r]) ++end;
    if (keep(table.video[r])) {
      for (; r < end; ++r) kept.add_half(table.video[r], table.time[r], table.row(r));  // half floats, as they are
    }
    r = end;
  }
  return kept.build();
}

std::vector<Segment> search_embedding(const FrameTable& table, const float* query, int dim, size_t k, double gap,
                                      const std::string& index_name, const AnnIndex* ann) {
  if (dim != table.dim && table.rows() > 0) {
    throw std::runtime_error(index_name + ": stored embeddings have dim " + std::to_string(table.dim) +
                             ", the model gives " + std::to_string(dim));
  }
  return search(table, query, k, gap, ann);
}

}  // namespace clipfind::index
