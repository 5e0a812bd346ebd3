#include "app/index_pipeline.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <variant>

#include "app/bounded_queue.h"
#include "app/time_format.h"
#include "clip/preprocess.h"
#include "index/catalog.h"
#include "index/fingerprint.h"
#include "video/decoder.h"

// The stages and the threads they run on:
//
//   decoder threads (DecoderPool)   each takes the next file, decodes and samples it and (CPU
//        │                          backend) preprocesses its frames; a file's frames, then its end
//        ▼  BoundedQueue<Work>      frames of several files interleave; memory stays bounded
//   encoder (Encoder; on the CPU     batches frames whatever their file, embeds; a file is finished
//        │   backend its own thread   once its end is seen and its last frame embedded
//        │   behind the decoders)
//        ▼  BoundedQueue<FinishedFile>
//   writer thread (Writer)          one transaction per file, the progress line, and now and then
//                                   a rewrite of vectors.f16 (at most ~1/10 of its time)

namespace clipfind {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Thread-seconds that several threads add to.
class Seconds {
 public:
  void add(double s) { ns_.fetch_add(int64_t(s * 1e9), std::memory_order_relaxed); }
  double get() const { return double(ns_.load(std::memory_order_relaxed)) * 1e-9; }

 private:
  std::atomic<int64_t> ns_{0};
};

double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) * 1e-6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// Named threads show up in top and perf; threads FFmpeg starts inherit the name.
void name_this_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

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

std::string describe(const video::SamplingOptions& s) {
  switch (s.mode) {
    case video::Sampling::every: return "every " + std::to_string(s.every);
    case video::Sampling::keyframes: return "keyframes";
    case video::Sampling::scenes: return "scenes " + std::to_string(s.scene_threshold);
  }
  return "?";
}

// An error message that names the file (decoder errors already do).
std::string naming(const fs::path& file, const std::string& what) {
  return what.rfind(file.string(), 0) == 0 ? what : file.string() + ": " + what;
}

// On the CPU backend the encoder runs this many nice steps below the
// decoders (its threads: the one embedding and the backend's workers, which
// inherit the nice value of the thread that loads the engine). A decoder that
// falls behind leaves the encoder idle, time lost for good; one that runs
// ahead only waits on a full queue. Measured on 2 cores (bench/video/
// RESULTS.md): the encoder's idle time drops from ~20% to ~9% of the run.
constexpr int kEncoderNiceSteps = 3;

// Runs f on a new thread named "cf-encode", kEncoderNiceSteps below this
// one (Linux: a nice value is per thread), and waits for it; rethrows what f
// throws.
template <class F>
void on_thread_behind_decoders(F&& f) {
  std::exception_ptr error;
  std::thread t([&] {
    name_this_thread("cf-encode");
    errno = 0;
    (void)nice(kEncoderNiceSteps);  // best effort: a failure only costs the priority
    try {
      f();
    } catch (...) {
      error = std::current_exception();
    }
  });
  t.join();
  if (error) std::rethrow_exception(error);
}

// ---------------------------------------------------------------- what flows between the stages

// One sampled frame of todo[file]: preprocessed pixels when the decoder
// threads preprocess (CPU backend), else the RGB picture for the engine (the
// CUDA backend preprocesses on the GPU).
struct SampledFrame {
  size_t file = 0;
  double time = 0.0;
  clip::Image image;
  std::vector<float> pixels;  // [3, crop_h, crop_w]
};

// After a file's last frame: how its decoding ended.
struct FileEnd {
  size_t file = 0;
  bool ok = false;
  video::VideoInfo info;
  std::string error;
};

using Work = std::variant<SampledFrame, FileEnd>;

// A file whose frames are all embedded, or that failed: for the writer.
struct FinishedFile {
  FileEnd end;
  std::vector<double> times;
  std::vector<float> embeddings;  // times.size() rows, L2-normalised
};

struct StageTimes {
  Seconds decode, preprocess, blocked, embed, starved, write;
  std::atomic<long> batches{0};
};

// ---------------------------------------------------------------- progress line

// One line on stderr, redrawn at most 5 times a second (a terminal is slow
// and frames come fast), from the encoder and the writer threads.
class Progress {
 public:
  Progress(bool enabled, size_t files, int64_t bytes) : enabled_(enabled), files_(files), bytes_(bytes) {}

  void embedded(long frames, size_t in_flight) {
    std::lock_guard lock(m_);
    frames_ += frames;
    in_flight_ = in_flight;
    draw(false);
  }
  void file_done(int64_t bytes) {
    std::lock_guard lock(m_);
    ++files_done_;
    bytes_done_ += bytes;
    draw(true);
  }
  // A log line (an error) without garbling the progress line.
  void print(const std::string& line) {
    std::lock_guard lock(m_);
    std::fprintf(stderr, "%s%s\n", enabled_ ? "\r\033[K" : "", line.c_str());
    if (enabled_) draw(true);
  }
  void finish() {
    std::lock_guard lock(m_);
    if (enabled_) std::fprintf(stderr, "\n");
  }

 private:
  void draw(bool force) {
    if (!enabled_ || (!force && since(last_draw_) < 0.2)) return;
    last_draw_ = Clock::now();
    const double el = since(start_);
    std::string eta = "?";  // by bytes of whole files done, once there is one
    if (bytes_done_ > 0) eta = format_hms(el * double(bytes_ - bytes_done_) / double(bytes_done_)).substr(0, 8);
    std::fprintf(stderr, "\r\033[K%zu/%zu files (%zu in flight) · %ld frames · %.1f frames/s · ETA %s", files_done_,
                 files_, in_flight_, frames_, el > 0 ? double(frames_) / el : 0.0, eta.c_str());
  }

  std::mutex m_;
  bool enabled_;
  size_t files_, files_done_ = 0, in_flight_ = 0;
  int64_t bytes_, bytes_done_ = 0;
  long frames_ = 0;
  Clock::time_point start_ = Clock::now(), last_draw_ = Clock::now() - std::chrono::seconds(1);
};

// ---------------------------------------------------------------- decoding

// Decodes files on a few threads, each taking the next file not yet taken,
// so the next videos' decoding overlaps the current one's encoding and short
// files do not leave the encoder waiting at every file boundary. The queue is
// closed when the last thread ends.
class DecoderPool {
 public:
  DecoderPool(const std::vector<fs::path>& files, const IndexRequest& req, const clip::PreprocessConfig* preprocess,
              int threads, BoundedQueue<Work>& queue, StageTimes& times)
      : files_(files), req_(req), preprocess_(preprocess), queue_(queue), times_(times), running_(threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  }
  ~DecoderPool() { join(); }
  DecoderPool(const DecoderPool&) = delete;
  DecoderPool& operator=(const DecoderPool&) = delete;

  void join() {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  struct Closed {};  // the encoder closed the queue: stop at once

  bool stopped() const { return req_.stop && req_.stop->load(); }

  void run() {
    name_this_thread("cf-decode");
    try {
      for (size_t i; !stopped() && (i = next_++) < files_.size();) decode_file(i);
    } catch (const Closed&) {
    }
    if (--running_ == 0) queue_.close();
  }

  // FFmpeg's own threads for one file: the cores shared among the files being
  // decoded when it is opened (FFmpeg's default, cores + 1 per file, measured
  // slower here: its extra frame threads cost more than they bring while the
  // encoder wants the same cores).
  int ffmpeg_threads() const {
    const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    return std::max(1, cores / std::max(1, busy_.load()));
  }

  void decode_file(size_t i) {
    ++busy_;
    struct Idle {
      std::atomic<int>& busy;
      ~Idle() { --busy; }
    } idle{busy_};
    const auto t0 = Clock::now();
    double blocked = 0.0, preprocessing = 0.0;
    auto emit = [&](double time, clip::Image&& image) {
      SampledFrame f{i, time, {}, {}};
      if (preprocess_) {
        const auto tp = Clock::now();
        f.pixels.resize(size_t(3) * preprocess_->crop_height * preprocess_->crop_width);
        clip::preprocess_image(image, *preprocess_, f.pixels.data());
        preprocessing += since(tp);
      } else {
        f.image = std::move(image);
      }
      const auto tb = Clock::now();
      const bool open = queue_.push(std::move(f));
      blocked += since(tb);
      if (!open) throw Closed{};
    };
    FileEnd end{i, false, {}, {}};
    try {
      if (is_image(files_[i])) {
        clip::Image img = clip::decode_image_file(files_[i]);
        end.info.width = img.width;
        end.info.height = img.height;
        end.info.decoded = 1;
        emit(0.0, std::move(img));
      } else {
        video::DecodeOptions o;
        o.sampling = req_.sampling;
        o.max_short_side = req_.max_short_side;
        o.threads = ffmpeg_threads();
        o.stop = req_.stop;
        end.info = video::decode_video(files_[i], o, [&](video::Frame&& f) { emit(f.time, std::move(f.image)); });
      }
      end.ok = true;
    } catch (const Closed&) {
      throw;
    } catch (const std::exception& e) {
      end.error = naming(files_[i], e.what());
    }
    times_.decode.add(since(t0) - blocked - preprocessing);
    times_.preprocess.add(preprocessing);
    times_.blocked.add(blocked);
    // A file cut short by Ctrl-C is not finished: never commit it.
    if (stopped()) throw Closed{};
    if (!queue_.push(std::move(end))) throw Closed{};
  }

  const std::vector<fs::path>& files_;
  const IndexRequest& req_;
  const clip::PreprocessConfig* preprocess_;  // null: frames go as RGB
  BoundedQueue<Work>& queue_;
  StageTimes& times_;
  std::atomic<size_t> next_{0};
  std::atomic<int> running_;
  std::atomic<int> busy_{0};  // threads decoding a file right now
  std::vector<std::thread> threads_;
};

// ---------------------------------------------------------------- encoding

// Embeds frames in batches that may mix files (with many short videos every
// batch is still full), and hands a file to the writer once its end has been
// seen and its last frame embedded. On the CPU backend a frame's embedding
// does not depend on the batch it was in, so the index equals one built one
// file at a time, byte for byte (tests/test_video_cli.py ManyInFlight).
class Encoder {
 public:
  Encoder(clip::Engine& engine, const IndexRequest& req, const std::vector<fs::path>& files, bool pixels,
          BoundedQueue<Work>& in, BoundedQueue<FinishedFile>& out, StageTimes& times, Progress& progress)
      : engine_(engine), req_(req), files_(files), pixels_(pixels), in_(in), out_(out), times_(times),
        progress_(progress) {}

  // Until the decoders are done, or Ctrl-C (then unfinished files are dropped).
  void run() {
    const size_t batch = size_t(std::max(req_.batch, 1));
    for (;;) {
      if ((req_.stop && req_.stop->load()) || writer_gone_) return;
      std::optional<Work> w = in_.try_pop();
      if (!w) {
        // Nothing ready. Full batches are cheapest per frame on the CPU
        // (measured: quarter batches cost ~3% more), so a part batch is
        // embedded now only when a file's commit waits on it or nothing more
        // will come; otherwise wait for frames.
        if (!batch_.empty() && (file_waits() || in_.finished())) {
          flush();
          continue;
        }
        const auto t0 = Clock::now();
        w = in_.pop();
        times_.starved.add(since(t0));
        if (!w) {  // decoders done (or stopped by Ctrl-C), queue drained
          if (!(req_.stop && req_.stop->load())) flush();
          return;
        }
      }
      if (auto* f = std::get_if<SampledFrame>(&*w)) {
        add(std::move(*f));
        if (batch_.size() >= batch) flush();
      } else {
        FileEnd& e = std::get<FileEnd>(*w);
        Open& o = open_[e.file];
        if (!e.ok) o.error = e.error;
        o.end = std::move(e);
        finish_ready();
      }
    }
  }

 private:
  // A file with frames seen and not yet handed to the writer.
  struct Open {
    std::vector<double> times;
    std::vector<float> embeddings;
    size_t in_batch = 0;          // its frames in batch_, not embedded yet
    std::optional<FileEnd> end;   // set once the decoder finished it
    std::string error;            // set when it failed (decoding or embedding)
  };
  struct Pending {
    size_t file;
    double time;
  };

  // A file has ended and waits only for its frames in the batch.
  bool file_waits() const {
    for (const auto& [file, o] : open_) {
      if (o.end && o.in_batch > 0) return true;
    }
    return false;
  }

  void add(SampledFrame&& f) {
    ++open_[f.file].in_batch;
    batch_.push_back({f.file, f.time});
    if (pixels_) pixel_rows_.push_back(std::move(f.pixels));
    else images_.push_back(std::move(f.image));
  }

  // These rows of the batch, in one engine call.
  clip::Tensor embed(const std::vector<size_t>& rows) {
    if (pixels_) {
      const auto& cfg = engine_.preprocess_config();
      const size_t per = size_t(3) * cfg.crop_height * cfg.crop_width;
      clip::Tensor t({int64_t(rows.size()), 3, cfg.crop_height, cfg.crop_width});
      for (size_t i = 0; i < rows.size(); ++i) std::memcpy(t.ptr() + i * per, pixel_rows_[rows[i]].data(), per * 4);
      return engine_.embed_pixels(t);
    }
    if (rows.size() == images_.size()) return engine_.embed_images(images_);
    std::vector<clip::Image> some;
    for (size_t r : rows) some.push_back(images_[r]);
    return engine_.embed_images(some);
  }

  void keep(const std::vector<size_t>& rows, const clip::Tensor& e) {
    const size_t dim = size_t(e.dim(1));
    for (size_t i = 0; i < rows.size(); ++i) {
      Open& o = open_[batch_[rows[i]].file];
      if (!o.error.empty()) continue;  // failed meanwhile: its frames are dropped
      o.times.push_back(batch_[rows[i]].time);
      o.embeddings.insert(o.embeddings.end(), e.ptr() + i * dim, e.ptr() + (i + 1) * dim);
    }
  }

  void flush() {
    if (batch_.empty()) return;
    const auto t0 = Clock::now();
    std::vector<size_t> all(batch_.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    try {
      clip::Tensor e = embed(all);
      clip::l2_normalize_rows(e);
      keep(all, e);
    } catch (const std::exception&) {
      // The batch mixes files: embed each file's frames alone, so only the
      // file whose frame the engine rejects fails.
      std::map<size_t, std::vector<size_t>> by_file;
      for (size_t i = 0; i < batch_.size(); ++i) by_file[batch_[i].file].push_back(i);
      for (const auto& [file, rows] : by_file) {
        try {
          clip::Tensor e = embed(rows);
          clip::l2_normalize_rows(e);
          keep(rows, e);
        } catch (const std::exception& err) {
          Open& o = open_[file];
          if (o.error.empty()) o.error = naming(files_[file], err.what());
        }
      }
    }
    times_.embed.add(since(t0));
    ++times_.batches;
    for (const Pending& p : batch_) --open_[p.file].in_batch;
    const long n = long(batch_.size());
    batch_.clear();
    pixel_rows_.clear();
    images_.clear();
    finish_ready();
    progress_.embedded(n, open_.size());
  }

  void finish_ready() {
    for (auto it = open_.begin(); it != open_.end();) {
      Open& o = it->second;
      if (!o.end || o.in_batch > 0) {
        ++it;
        continue;
      }
      FinishedFile f{std::move(*o.end), std::move(o.times), std::move(o.embeddings)};
      if (!o.error.empty()) {
        f.end.ok = false;
        f.end.error = o.error;
        f.times.clear();
        f.embeddings.clear();
      }
      if (!out_.push(std::move(f))) writer_gone_ = true;
      it = open_.erase(it);
    }
  }

  clip::Engine& engine_;
  const IndexRequest& req_;
  const std::vector<fs::path>& files_;
  bool pixels_;
  BoundedQueue<Work>& in_;
  BoundedQueue<FinishedFile>& out_;
  StageTimes& times_;
  Progress& progress_;
  std::map<size_t, Open> open_;
  std::vector<Pending> batch_;
  std::vector<std::vector<float>> pixel_rows_;  // with pixels_
  std::vector<clip::Image> images_;             // without
  bool writer_gone_ = false;                    // the writer failed: stop (run_index reports why)
};

// ---------------------------------------------------------------- writing

// Commits finished files, one transaction each, on its own thread so that
// SQLite never holds up the encoder. Also rewrites vectors.f16 now and then
// during long runs (when the time since the last rewrite is at least
// kRewriteEvery times what it cost), so a search during indexing or after a
// kill mostly finds it current; run_index rewrites it once more at the end.
class Writer {
 public:
  static constexpr double kRewriteEvery = 10.0;

  Writer(index::Catalog& cat, const std::vector<fs::path>& files, const std::vector<FileStat>& stats,
         const std::string& fingerprint, int dim, BoundedQueue<FinishedFile>& in, StageTimes& times,
         Progress& progress, IndexSummary& sum, bool log_lines)
      : cat_(cat), files_(files), stats_(stats), fingerprint_(fingerprint), dim_(dim), in_(in), times_(times),
        progress_(progress), sum_(sum), log_lines_(log_lines) {
    thread_ = std::thread([this] { run(); });
  }
  ~Writer() {
    in_.close();
    if (thread_.joinable()) thread_.join();
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // After the encoder is done: commits what is left, then returns, or
  // rethrows what stopped the writer.
  void join() {
    in_.close();
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  void run() {
    name_this_thread("cf-write");
    try {
      while (auto f = in_.pop()) {
        commit(*f);
        if (since(last_rewrite_end_) >= kRewriteEvery * last_rewrite_cost_) rewrite_vectors();
      }
    } catch (...) {  // SQLite failed: the run stops (run_index rethrows)
      error_ = std::current_exception();
      in_.close();
    }
  }

  void commit(FinishedFile& f) {
    const size_t i = f.end.file;
    index::VideoRecord rec;
    rec.path = files_[i].string();
    rec.size = stats_[i].size;
    rec.mtime_ns = stats_[i].mtime_ns;
    rec.model = fingerprint_;
    if (f.end.ok) {
      rec.status = "ok";
      rec.duration = f.end.info.duration;
      rec.fps = f.end.info.fps;
      rec.width = f.end.info.width;
      rec.height = f.end.info.height;
    } else {
      rec.status = "error";
      rec.error = f.end.error;
    }
    const auto t0 = Clock::now();
    cat_.put_video(rec, f.times, f.embeddings, dim_);
    times_.write.add(since(t0));
    if (f.end.ok) {
      ++sum_.indexed;
      sum_.frames += long(f.times.size());
      if (log_lines_) std::fprintf(stderr, "indexed %s (%zu frames)\n", rec.path.c_str(), f.times.size());
    } else {
      sum_.failed.emplace_back(rec.path, f.end.error);
      progress_.print("error: " + f.end.error);
    }
    progress_.file_done(rec.size);
  }

  void rewrite_vectors() {
    const auto t0 = Clock::now();
    try {
      if (cat_.update_vector_file()) ++sum_.vectors_written;
      sum_.vectors_error.clear();
    } catch (const std::exception& e) {
      sum_.vectors_error = e.what();  // not fatal: search reads SQLite meanwhile
    }
    last_rewrite_cost_ = since(t0);
    sum_.vectors_s += last_rewrite_cost_;
    last_rewrite_end_ = Clock::now();
  }

  index::Catalog& cat_;
  const std::vector<fs::path>& files_;
  const std::vector<FileStat>& stats_;
  const std::string& fingerprint_;
  int dim_;
  BoundedQueue<FinishedFile>& in_;
  StageTimes& times_;
  Progress& progress_;
  IndexSummary& sum_;  // indexed, frames, failed, vectors_*: this thread's until join()
  bool log_lines_;
  Clock::time_point last_rewrite_end_ = Clock::now();
  double last_rewrite_cost_ = 0.0;
  std::exception_ptr error_;
  std::thread thread_;
};

// How many files to decode at once: enough that one file's start and end
// (probing, decoder set-up, draining the frame threads) overlap others' work.
int decoder_count(const IndexRequest& req, size_t files) {
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const int want = req.decoders > 0 ? req.decoders : std::clamp(cores / 2, 2, 8);
  return int(std::min<size_t>(size_t(want), std::max<size_t>(files, 1)));
}

// Rewrites vectors.f16 if the catalog changed since it was written.
void bring_vectors_up_to_date(const index::Catalog& cat, IndexSummary& sum) {
  const auto t0 = Clock::now();
  try {
    if (cat.update_vector_file()) ++sum.vectors_written;
    sum.vectors_error.clear();
  } catch (const std::exception& e) {
    sum.vectors_error = e.what();
  }
  sum.vectors_s += since(t0);
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
    // Nothing to embed, but a killed run may have left vectors.f16 behind the catalog.
    bring_vectors_up_to_date(cat, sum);
    sum.seconds = since(t_start);
    return sum;
  }

  // On the CPU backend the encoder and the decoders share the cores.
  const bool shares_cores = req.engine.device == "cpu" || (req.engine.device == "auto" && !clip::cuda_usable(nullptr));
  std::unique_ptr<clip::Engine> engine;
  if (shares_cores) on_thread_behind_decoders([&] { engine = clip::Engine::load(model_dir, req.engine); });
  else engine = clip::Engine::load(model_dir, req.engine);
  const int dim = engine->projection_dim();
  cat.set_meta("model", fp);
  cat.set_meta("model_path", fs::absolute(model_dir).string());
  cat.set_meta("dim", std::to_string(dim));
  cat.set_meta("sampling", describe(req.sampling));
  // Search merges hits closer than twice the sampling interval.
  cat.set_meta("interval", std::to_string(req.sampling.mode == video::Sampling::every ? req.sampling.every : 2.0));

  // The CPU backend's preprocessing runs on the decoder threads, in parallel
  // with encoding; other backends take RGB and preprocess themselves (CUDA:
  // on the GPU). Either way the same PIL-exact code, so the same pixels.
  const bool preprocess_on_decoders = engine->backend_name().rfind("cpu", 0) == 0;
  const clip::PreprocessConfig preprocess = engine->preprocess_config();

  const auto t_pipeline = Clock::now();
  const double cpu0 = process_cpu_seconds();
  sum.decoders = decoder_count(req, todo.size());
  StageTimes times;
  Progress progress(req.progress, todo.size(), todo_bytes);
  BoundedQueue<Work> frames(size_t(std::max(req.batch, 1)) * 2);
  BoundedQueue<FinishedFile> finished(1024);  // small items; never holds the encoder up
  {
    Writer writer(cat, todo, stats, fp, dim, finished, times, progress, sum, !req.progress);
    DecoderPool decoders(todo, req, preprocess_on_decoders ? &preprocess : nullptr, sum.decoders, frames, times);
    // Whatever happens here, decoders must not be left blocked on a full queue.
    struct Closer {
      BoundedQueue<Work>& q;
      ~Closer() { q.close(); }
    } closer{frames};
    Encoder encoder(*engine, req, todo, preprocess_on_decoders, frames, finished, times, progress);
    if (shares_cores) on_thread_behind_decoders([&] { encoder.run(); });
    else encoder.run();
    frames.close();
    decoders.join();
    writer.join();
  }
  progress.finish();
  sum.pipeline_s = since(t_pipeline);
  sum.cpu_s = process_cpu_seconds() - cpu0;
  sum.interrupted = req.stop && req.stop->load();
  bring_vectors_up_to_date(cat, sum);
  sum.decode_s = times.decode.get();
  sum.preprocess_s = times.preprocess.get();
  sum.embed_s = times.embed.get();
  sum.write_s = times.write.get();
  sum.decoders_blocked_s = times.blocked.get();
  sum.encoder_starved_s = times.starved.get();
  sum.batches = times.batches.load();
  sum.seconds = since(t_start);
  return sum;
}

}  // namespace clipfind
