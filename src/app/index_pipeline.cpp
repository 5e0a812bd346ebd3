#include "app/index_pipeline.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include "app/bounded_queue.h"
#include "app/time_format.h"
#include "index/catalog.h"
#include "index/fingerprint.h"
#include "video/decoder.h"

namespace clipfind {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

const std::set<std::string> kImageExt = {".jpg", ".jpeg", ".png"};
const std::set<std::string> kVideoExt = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg",
                                         ".ts",  ".mts", ".m2ts", ".wmv", ".flv", ".3gp", ".ogv"};

std::string lower_ext(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return e;
}
bool is_image(const fs::path& p) { return kImageExt.count(lower_ext(p)) > 0; }

struct FileStat {
  int64_t size = 0, mtime_ns = 0;
};
FileStat stat_file(const fs::path& p) {
  FileStat s;
  s.size = int64_t(fs::file_size(p));
  s.mtime_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(fs::last_write_time(p).time_since_epoch()).count();
  return s;
}

// What the decoder thread hands the encoder: frames of one file, then how it ended.
struct Item {
  enum Kind { picture, done, failed } kind = picture;
  size_t file = 0;
  video::Frame frame;
  video::VideoInfo info;
  std::string error;
};

// Runs on its own thread: decodes each file in order into the queue.
void decode_all(const std::vector<fs::path>& files, const IndexRequest& req, BoundedQueue<Item>& q,
                double& decode_s) {
  const auto stopped = [&] { return req.stop && req.stop->load(); };
  struct Closed {};  // the consumer gave up: unwind out of the decoder
  for (size_t i = 0; i < files.size() && !stopped(); ++i) {
    const auto t0 = Clock::now();
    Item end;
    end.file = i;
    try {
      if (is_image(files[i])) {
        clip::Image img = clip::decode_image_file(files[i]);
        end.info.width = img.width;
        end.info.height = img.height;
        end.info.decoded = 1;
        if (!q.push(Item{Item::picture, i, video::Frame{0.0, std::move(img)}, {}, {}})) throw Closed{};
      } else {
        video::DecodeOptions o;
        o.sampling = req.sampling;
        o.max_short_side = req.max_short_side;
        o.stop = req.stop;
        end.info = video::decode_video(files[i], o, [&](video::Frame&& f) {
          if (!q.push(Item{Item::picture, i, std::move(f), {}, {}})) throw Closed{};
        });
      }
      end.kind = Item::done;
    } catch (const Closed&) {
      return;
    } catch (const std::exception& e) {
      end.kind = Item::failed;
      end.error = e.what();
    }
    decode_s += since(t0);
    // A file cut short by Ctrl-C is not finished: never commit it.
    if (stopped() || !q.push(std::move(end))) return;
  }
}

std::string describe(const video::SamplingOptions& s) {
  switch (s.mode) {
    case video::Sampling::every: return "every " + std::to_string(s.every);
    case video::Sampling::keyframes: return "keyframes";
    case video::Sampling::scenes: return "scenes " + std::to_string(s.scene_threshold);
  }
  return "?";
}

}  // namespace

std::vector<fs::path> collect_inputs(const std::vector<fs::path>& inputs) {
  std::set<fs::path> out;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      for (auto it = fs::recursive_directory_iterator(in, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const std::string e = lower_ext(it->path());
        if (it->is_regular_file(ec) && (kImageExt.count(e) || kVideoExt.count(e))) {
          out.insert(fs::weakly_canonical(fs::absolute(it->path())));
        }
      }
    } else {
      out.insert(fs::weakly_canonical(fs::absolute(in)));  // a missing file is reported later, per file
    }
  }
  return {out.begin(), out.end()};
}

IndexSummary run_index(const IndexRequest& req) {
  const auto t_start = Clock::now();
  IndexSummary sum;
  index::Catalog cat(req.index_dir, true);

  // Which model: the one asked for, else the one the index was built with.
  fs::path model_dir = req.model_dir;
  if (model_dir.empty()) {
    const auto stored = cat.meta("model_path");
    if (!stored) throw std::runtime_error(req.index_dir.string() + ": new index: pass --model DIR (a CLIP model folder)");
    model_dir = *stored;
  }
  const std::string fp = index::model_fingerprint(model_dir);
  const auto stored_fp = cat.meta("model");
  if (stored_fp && *stored_fp != fp && !req.reindex) {
    throw std::runtime_error(req.index_dir.string() + ": built with another model (" + cat.meta("model_path").value_or("?") +
                             ", fingerprint " + *stored_fp + "); " + model_dir.string() + " has fingerprint " + fp +
                             ". Embeddings of different models cannot be mixed: re-run with --reindex to rebuild "
                             "the index with this model, or use --index for another folder");
  }
  if (req.reindex) cat.clear();

  // Forget what is gone from disk.
  for (const auto& v : cat.videos()) {
    std::error_code ec;
    if (!fs::exists(v.path, ec)) {
      cat.forget(v.path);
      ++sum.forgotten;
    }
  }

  // Skip what is unchanged; the rest is to do.
  std::vector<fs::path> todo;
  std::vector<FileStat> stats;
  int64_t todo_bytes = 0;
  for (const auto& f : collect_inputs(req.inputs)) {
    std::error_code ec;
    if (!fs::is_regular_file(f, ec)) {
      sum.failed.emplace_back(f.string(), f.string() + ": no such file");
      continue;
    }
    const FileStat st = stat_file(f);
    const auto rec = cat.find(f.string());
    if (rec && rec->status == "ok" && rec->size == st.size && rec->mtime_ns == st.mtime_ns && rec->model == fp) {
      ++sum.skipped;
      continue;
    }
    todo.push_back(f);
    stats.push_back(st);
    todo_bytes += st.size;
  }
  if (todo.empty()) {
    sum.seconds = since(t_start);
    return sum;
  }

  auto engine = clip::Engine::load(model_dir, req.engine);
  const int dim = engine->projection_dim();
  cat.set_meta("model", fp);
  cat.set_meta("model_path", fs::absolute(model_dir).string());
  cat.set_meta("dim", std::to_string(dim));
  cat.set_meta("sampling", describe(req.sampling));
  // Search merges hits closer than twice the sampling interval.
  cat.set_meta("interval", std::to_string(req.sampling.mode == video::Sampling::every ? req.sampling.every : 2.0));

  const auto t_pipeline = Clock::now();
  BoundedQueue<Item> queue(size_t(std::max(req.batch, 1)) * 2);
  double decode_s = 0.0;
  std::thread producer([&] { decode_all(todo, req, queue, decode_s); queue.close(); });
  // Whatever happens here, the producer must not be left blocked on a full queue.
  struct Joiner {
    BoundedQueue<Item>& q;
    std::thread& t;
    ~Joiner() { q.close(); if (t.joinable()) t.join(); }
  } joiner{queue, producer};

  std::vector<double> times;
  std::vector<float> embeds;
  std::vector<clip::Image> batch;
  std::vector<double> batch_times;
  int64_t done_bytes = 0;
  long frames_total = 0;
  auto flush = [&] {
    if (batch.empty()) return;
    const auto t0 = Clock::now();
    clip::Tensor t = engine->embed_images(batch);
    clip::l2_normalize_rows(t);
    sum.embed_s += since(t0);
    embeds.insert(embeds.end(), t.data.begin(), t.data.end());
    times.insert(times.end(), batch_times.begin(), batch_times.end());
    frames_total += long(batch.size());
    batch.clear();
    batch_times.clear();
  };
  // Redrawn at most 5 times a second: a terminal is slow, and frames come fast.
  auto last_draw = Clock::now() - std::chrono::seconds(1);
  auto progress = [&](size_t files_done, double at, bool force) {
    if (!req.progress || (!force && since(last_draw) < 0.2)) return;
    last_draw = Clock::now();
    const double el = since(t_start);
    const double rate = el > 0 ? double(frames_total) / el : 0.0;
    std::string eta = "?";  // by bytes of whole files done, once there is one
    if (done_bytes > 0) eta = format_hms(el * double(todo_bytes - done_bytes) / double(done_bytes)).substr(0, 8);
    std::fprintf(stderr, "\r\033[K%zu/%zu files · at %s · %ld frames · %.1f frames/s · ETA %s", files_done,
                 todo.size(), format_hms(at).substr(0, 8).c_str(), frames_total, rate, eta.c_str());
  };

  while (auto item = queue.pop()) {
    const fs::path& path = todo[item->file];
    if (item->kind == Item::picture) {
      batch.push_back(std::move(item->frame.image));
      batch_times.push_back(item->frame.time);
      if (int(batch.size()) >= req.batch) flush();
      progress(item->file, item->frame.time, false);
      continue;
    }
    index::VideoRecord rec;
    rec.path = path.string();
    rec.size = stats[item->file].size;
    rec.mtime_ns = stats[item->file].mtime_ns;
    rec.model = fp;
    if (item->kind == Item::done) {
      try {
        flush();
      } catch (const std::exception& e) {  // e.g. an image the engine rejects
        item->kind = Item::failed;
        item->error = path.string() + ": " + e.what();
      }
    }
    if (item->kind == Item::done) {
      rec.status = "ok";
      rec.duration = item->info.duration;
      rec.fps = item->info.fps;
      rec.width = item->info.width;
      rec.height = item->info.height;
    } else {
      rec.status = "error";
      rec.error = item->error;
      times.clear();
      embeds.clear();
      batch.clear();
      batch_times.clear();
      sum.failed.emplace_back(rec.path, item->error);
    }
    const auto t0 = Clock::now();
    cat.put_video(rec, times, embeds, dim);
    sum.write_s += since(t0);
    done_bytes += rec.size;
    if (rec.status == "ok") {
      ++sum.indexed;
      sum.frames += long(times.size());
      if (!req.progress) std::fprintf(stderr, "indexed %s (%zu frames)\n", rec.path.c_str(), times.size());
    } else {
      if (req.progress) std::fprintf(stderr, "\r\033[K");
      std::fprintf(stderr, "error: %s\n", item->error.c_str());
    }
    times.clear();
    embeds.clear();
    progress(item->file + 1, rec.duration, true);
  }
  if (req.progress) std::fprintf(stderr, "\n");
  sum.interrupted = req.stop && req.stop->load();
  producer.join();
  sum.decode_s = decode_s;
  sum.pipeline_s = since(t_pipeline);
  sum.seconds = since(t_start);
  return sum;
}

}  // namespace clipfind
