#include "indexer/pipeline.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "clip/image/preprocess.h"
#include "index/catalog.h"
#include "index/fingerprint.h"
#include "index/query.h"
#include "indexer/bounded_queue.h"
#include "indexer/decode_units.h"
#include "indexer/decoders.h"
#include "indexer/encoder.h"
#include "indexer/gpu_decoders.h"
#include "indexer/inputs.h"
#include "indexer/lanes.h"
#include "indexer/part_joiner.h"
#include "indexer/progress.h"
#include "indexer/stages.h"
#include "indexer/unit_queue.h"
#include "indexer/writer.h"

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
//
// Each stage has its own file (decoders, encoder, writer);
// what flows between them is in stages.h; this file wires them up.

namespace clipfind {

namespace fs = std::filesystem;

namespace {

double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) * 1e-6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

std::string describe(const video::SamplingOptions& s) {
  switch (s.mode) {
    case video::Sampling::every: return "every " + std::to_string(s.every);
    case video::Sampling::keyframes: return "keyframes";
    case video::Sampling::scenes: return "scenes " + std::to_string(s.scene_threshold);
  }
  return "?";
}

// How many files (or parts of files, decode_units.h) to decode at once on
// CPU threads: enough that one file's start and end (probing, decoder
// set-up, draining the frame threads) overlap others' work. Beside NVDEC,
// where the encoder leaves the cores to them, all but two (the NVDEC
// threads' parsing, the encoder, the writer). Not capped by the file count:
// fewer files are split into parts instead.
int decoder_count(const IndexRequest& req, bool beside_gpu) {
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  return req.decoders > 0 ? req.decoders : beside_gpu ? std::max(1, cores - 2) : std::clamp(cores / 2, 2, 8);
}

// Whether this run decodes with NVDEC (see DecodeOn); throws for --decode gpu
// when it cannot, saying why.
bool decode_on_gpu(const IndexRequest& req, const clip::Engine& engine) {
  if (req.decode == DecodeOn::cpu) return false;
  std::string why;
  if (gpu_decoding_available(engine.cuda_device(), &why)) return true;
  if (req.decode == DecodeOn::gpu) throw std::runtime_error("--decode gpu: cannot decode on the GPU: " + why);
  return false;
}

// The index folder when it does not exist yet: removed again (with the
// parents made for it) unless keep() is called, so that a run that indexes
// nothing leaves nothing behind, nor one that stops with an error (a bad
// model, no --model; or SQLite failing midway, when what this run committed
// to its own new index goes too). Only what the catalog writes is removed:
// a folder someone else put files in stays.
class NewIndexFolder {
 public:
  explicit NewIndexFolder(const fs::path& dir) {
    std::error_code ec;
    fs::path p = fs::absolute(dir, ec).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();  // "idx/"
    if (ec || fs::exists(p, ec) || ec) return;
    for (fs::path d = p; !d.empty() && d != d.parent_path() && !fs::exists(d, ec); d = d.parent_path()) {
      made_.push_back(d);
    }
  }
  ~NewIndexFolder() { remove(); }
  NewIndexFolder(const NewIndexFolder&) = delete;
  NewIndexFolder& operator=(const NewIndexFolder&) = delete;

  void keep() { made_.clear(); }

  // True when the folder was new and is gone now.
  bool remove() {
    if (made_.empty()) return false;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(made_.front(), ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("catalog.sqlite", 0) == 0 || name.rfind("vectors.f16", 0) == 0) fs::remove(e.path(), ec);
    }
    bool gone = true;
    for (const auto& d : made_) gone = fs::remove(d, ec) && gone;  // innermost first; only if empty
    made_.clear();
    return gone;
  }

 private:
  std::vector<fs::path> made_;  // the index folder, then each parent that did not exist either
};

IndexSummary index_files(const IndexRequest& req) {
  const auto t_start = Clock::now();
  IndexSummary sum;
  index::Catalog cat(req.index_dir, true);

  // Which model: the one asked for, else the one the index was built with.
  fs::path model_dir = req.model_dir;
  if (model_dir.empty()) {
    const auto stored = cat.meta("model_path");
    if (!stored)
      throw std::runtime_error(req.index_dir.string() + ": new index: pass --model DIR (a CLIP model folder)");
    model_dir = *stored;
  }
  const std::string fp = index::model_fingerprint(model_dir);
  // Another family first: it says more than another fingerprint (which it implies).
  if (const std::string wrong = index::family_mismatch(cat, model_dir.string()); !wrong.empty() && !req.reindex) {
    throw std::runtime_error(wrong +
                             ". Embeddings of different model families cannot be mixed: re-run with --reindex to "
                             "rebuild the index with this model, or use --index for another folder");
  }
  const auto stored_fp = cat.meta("model");
  if (stored_fp && *stored_fp != fp && !req.reindex) {
    throw std::runtime_error(req.index_dir.string() + ": built with another model (" +
                             cat.meta("model_path").value_or("?") + ", fingerprint " + *stored_fp + "); " +
                             model_dir.string() + " has fingerprint " + fp +
                             ". Embeddings of different models cannot be mixed: re-run with --reindex to rebuild "
                             "the index with this model, or use --index for another folder");
  }
  // A shard index holds one share of the files: adding another share (or
  // all of them) to it would make merging the shards count files twice.
  const std::string recorded_shard = cat.meta("shard").value_or("");
  const std::string shard = req.shard.whole() ? "" : req.shard.spec();
  if (recorded_shard != shard && !req.reindex && !cat.videos().empty()) {
    throw std::runtime_error(req.index_dir.string() + ": holds " +
                             (recorded_shard.empty() ? "an unsharded index" : "shard " + recorded_shard) +
                             ", this run is " + (shard.empty() ? "unsharded" : "--shard " + shard) +
                             ": use the same shard, --reindex, or another --index folder");
  }
  if (req.reindex) cat.clear();
  cat.set_meta("shard", shard);

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
    if (!in_shard(shard_key(f, req.inputs), req.shard)) {
      ++sum.other_shards;
      continue;
    }
    std::error_code ec;
    if (!fs::is_regular_file(f, ec)) {
      sum.failed.emplace_back(f.string(), f.string() + ": no such file");
      std::fprintf(stderr, "error: %s\n", sum.failed.back().second.c_str());  // before any progress line
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

  // One lane per device (lanes.h); the first lane's engine says what the
  // index records. On the CPU backend the encoder and the decoders share
  // the cores.
  const std::vector<std::string> devices = !req.devices.empty() ? req.devices : clip::device_list(req.engine.device);
  const std::string& first = devices.front();
  const bool shares_cores = first == "cpu" || (first == "auto" && !clip::cuda_usable(nullptr));
  std::vector<Lane> lanes(devices.size());
  for (size_t l = 0; l < lanes.size(); ++l) {
    clip::EngineOptions options = req.engine;
    options.device = devices[l];
    if (shares_cores)
      on_thread_behind_decoders([&] { lanes[l].engine = clip::Engine::load(model_dir, options); });
    else
      lanes[l].engine = clip::Engine::load(model_dir, options);
  }
  clip::Engine& engine = *lanes.front().engine;
  const int dim = engine.projection_dim();
  for (const Lane& l : lanes) sum.device += (sum.device.empty() ? "" : " + ") + l.engine->backend_name();
  // The family and the logit parameters: search refuses a query model of
  // another family, and turns SigLIP scores into probabilities.
  const clip::ClipConfig& config = engine.config();
  cat.set_model({.fingerprint = fp,
                 .path = fs::absolute(model_dir).string(),
                 .dim = dim,
                 .family = clip::family_name(config.family),
                 .logit_scale = config.logit_scale,
                 .logit_bias = config.logit_bias});
  cat.record_precision(clip::precision_name(engine.precision()));  // search warns on another
  cat.set_meta("sampling", describe(req.sampling));
  // Search merges hits closer than twice the sampling interval.
  cat.set_meta("interval", std::to_string(req.sampling.mode == video::Sampling::every ? req.sampling.every : 2.0));

  // The CPU backend's preprocessing runs on the decoder threads, in parallel
  // with encoding; other backends take RGB and preprocess themselves (CUDA:
  // on the GPU). Either way the same PIL-exact code, so the same pixels.
  const bool preprocess_on_decoders = engine.backend_name().rfind("cpu", 0) == 0;
  const clip::PreprocessConfig preprocess = engine.preprocess_config();

  // NVDEC beside the CPU decoders on each GPU; its frames live in the
  // lane's pool, which must outlive every queue and stage that holds them
  // (Lane's member order).
  const int gpu_sessions = req.gpu_decoders > 0 ? req.gpu_decoders : GpuDecoders::kDefaultSessions;
  int gpu_threads = 0;
  for (Lane& l : lanes) {
    if (!decode_on_gpu(req, *l.engine)) continue;
    l.gpu = std::make_unique<GpuDecoders>(l.engine->cuda_device(),
                                          std::max<size_t>(GpuDecoders::kDefaultPoolFrames, size_t(req.batch)));
    gpu_threads += gpu_sessions;
  }

  const auto t_pipeline = Clock::now();
  const double cpu0 = process_cpu_seconds();
  // NVDEC and CPU threads take the same units (long files split for them all).
  const int decoders = decoder_count(req, gpu_threads > 0);
  const std::vector<DecodeUnit> units = plan_decode_units(todo, req.sampling, decoders + gpu_threads);
  std::vector<LaneFeed> feeds;
  for (Lane& l : lanes) {
    l.frames = std::make_unique<BoundedQueue<Work>>(size_t(std::max(req.batch, 1)) * 2);
    const int threads = l.gpu ? int(std::min(size_t(gpu_sessions), units.size())) : 0;
    sum.gpu_decoders += threads;
    feeds.push_back({l.frames.get(), l.gpu.get(), threads});
  }
  sum.decoders = int(std::min(size_t(decoders), units.size()));
  StageTimes times;
  Progress progress(req.progress, todo.size(), todo_bytes);
  BoundedQueue<FinishedFile> finished(1024);  // small items; never holds the encoders up
  UnitQueue next(units.size(), sum.gpu_decoders, int(lanes.size()));
  PartJoiner joiner(req.sampling, finished, [&](size_t unit) { next.done(unit); });
  // Wakes every thread that could wait: the decoders on a full queue, for
  // a GPU frame buffer or for a unit, the encoders for frames.
  auto close_all = [&] {
    next.close();
    for (Lane& l : lanes) {
      l.frames->close();
      if (l.gpu) l.gpu->close();
    }
  };
  {
    Writer writer(cat, todo, stats, fp, dim, finished, times, progress, sum, !req.progress);
    DecoderPool decoders(todo, units, req, preprocess_on_decoders ? &preprocess : nullptr, sum.decoders, feeds, next,
                         times, progress, /*sited_chroma=*/engine.cuda_device() >= 0);  // see video::DecodeOptions
    // Whatever happens here, decoders must not be left blocked.
    struct Closer {
      decltype(close_all)& close;
      ~Closer() { close(); }
    } closer{close_all};
    for (size_t l = 0; l < lanes.size(); ++l) {
      EncoderLane lane;
      lane.index = int(l);
      lane.lose = [&, l](const std::string& error) {
        if (!next.lose_lane(int(l))) return false;
        progress.print("warning: " + devices[l] + " failed, its unfinished files go to the other devices: " + error);
        lanes[l].frames->close();  // wakes its decoders, which drop their units
        if (lanes[l].gpu) lanes[l].gpu->close();
        return true;
      };
      if (int(l) == req.simulate_lost_lane) lane.simulate_at_batch = req.simulate_lost_at_batch;
      lanes[l].encoder = std::make_unique<Encoder>(*lanes[l].engine, req, todo, preprocess_on_decoders,
                                                   *lanes[l].frames, joiner, progress, std::move(lane));
    }
    std::exception_ptr error = run_encoders(lanes, shares_cores, close_all);
    decoders.join();
    if (error) std::rethrow_exception(error);
    writer.join();
  }
  progress.finish();
  sum.pipeline_s = since(t_pipeline);
  sum.cpu_s = process_cpu_seconds() - cpu0;
  sum.interrupted = req.stop && req.stop->load();
  bring_vectors_up_to_date(cat, sum);
  sum.decode_s = times.decode.get();
  sum.preprocess_s = times.preprocess.get();
  sum.write_s = times.write.get();
  sum.decoders_blocked_s = times.blocked.get();
  sum.files_on_gpu = times.gpu_files.load();
  sum.parts = int(std::count_if(units.begin(), units.end(), [](const DecodeUnit& u) { return u.parts > 1; }));
  sum.parts_on_gpu = times.gpu_parts.load();
  for (const Lane& l : lanes) {
    const Encoder& e = *l.encoder;
    sum.lanes.push_back(
        {l.engine->backend_name(), e.frames(), e.batches(), e.embed_seconds(), e.starved_seconds(), e.lost()});
    sum.batches += e.batches();
    sum.embed_s += e.embed_seconds();
    sum.encoder_starved_s += e.starved_seconds();
  }
  sum.files_on_cpu = times.cpu_files.load();
  sum.gpu_refused = times.gpu_refused.load();
  sum.seconds = since(t_start);
  return sum;
}

}  // namespace

IndexSummary run_index(const IndexRequest& req) {
  NewIndexFolder folder(req.index_dir);
  IndexSummary sum = index_files(req);
  if (sum.indexed > 0)
    folder.keep();
  else
    sum.removed_new_index = folder.remove();
  return sum;
}

}  // namespace clipfind
