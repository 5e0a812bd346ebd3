#include "indexer/encoder.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <thread>
#include <utility>

namespace clipfind {

namespace {

// On the CPU backend the encoder runs this many nice steps below the
// decoders (its threads: the one embedding and the backend's workers, which
// inherit the nice value of the thread that loads the engine). A decoder that
// falls behind leaves the encoder idle, time lost for good; one that runs
// ahead only waits on a full queue. Measured on 2 cores (bench/video/
// RESULTS.md): the encoder's idle time drops from ~20% to ~9% of the run.
constexpr int kEncoderNiceSteps = 3;

}  // namespace

void on_thread_behind_decoders(const std::function<void()>& f) {
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

void Encoder::run() {
  const size_t batch = size_t(std::max(req_.batch, 1));
  for (;;) {
    if ((req_.stop && req_.stop->load()) || writer_gone_) return;
    std::optional<Work> w = in_.try_pop();
    if (!w) {
      // Nothing ready. Full batches are cheapest per frame on the CPU
      // (measured: quarter batches cost ~3% more), so a part batch is
      // embedded now only when a part's end waits on it or nothing more
      // will come; otherwise wait for frames.
      if (!batch_.empty() && (part_waits() || in_.finished())) {
        if (!flush()) return;
        continue;
      }
      const auto t0 = Clock::now();
      w = in_.pop();
      starved_s_ += since(t0);
      if (!w) {  // decoders done (or stopped by Ctrl-C), queue drained
        if (!(req_.stop && req_.stop->load())) flush();
        return;
      }
    }
    if (auto* f = std::get_if<SampledFrame>(&*w)) {
      add(std::move(*f));
      if (batch_.size() >= batch && !flush()) return;
    } else {
      FileEnd& e = std::get<FileEnd>(*w);
      Part& p = open_[{e.file, e.part}];
      restart_if_later(p, e.attempt);
      if (e.attempt < p.attempt) continue;  // the end of a decoding given up since
      if (!e.ok && p.error.empty()) p.error = e.error;
      p.end = std::move(e);
      finish_ready();
    }
  }
}

// A part has ended and waits only for its frames in the batch.
bool Encoder::part_waits() const {
  for (const auto& [key, p] : open_) {
    if (p.ended() && p.in_batch > 0) return true;
  }
  return false;
}

// A later decoding of a part (the CPU's, after NVDEC gave it up midway)
// starts over: what the earlier one delivered is dropped, here and (by keep)
// as its rows in the batch are embedded.
void Encoder::restart_if_later(Part& p, int attempt) {
  if (attempt <= p.attempt) return;
  p.attempt = attempt;
  p.times.clear();
  p.embeddings.clear();
  p.error.clear();
}

void Encoder::add(SampledFrame&& f) {
  Part& p = open_[{f.file, f.part}];
  restart_if_later(p, f.attempt);
  ++p.in_batch;
  batch_.push_back({f.file, f.time, f.attempt, f.part});
  if (pixels_) {
    pixel_rows_.push_back(std::move(f.pixels));
  } else {
    images_.push_back(std::move(f.image));
    device_.push_back(std::move(f.device));
  }
}

// These rows of the batch: one engine call for those in host memory, one
// for those in GPU memory; the embeddings in the order of `rows`.
clip::Tensor Encoder::embed(const std::vector<size_t>& rows) {
  if (pixels_) return embed_host(rows);
  std::vector<size_t> host;
  std::vector<clip::DeviceImageView> on_gpu;
  std::vector<size_t> at_host, at_gpu;  // where each goes in the result
  for (size_t i = 0; i < rows.size(); ++i) {
    if (device_[rows[i]]) {
      on_gpu.push_back(*device_[rows[i]]);
      at_gpu.push_back(i);
    } else {
      host.push_back(rows[i]);
      at_host.push_back(i);
    }
  }
  if (on_gpu.empty()) return embed_host(rows);
  const clip::Tensor g = engine_.embed_device_images(on_gpu);
  if (host.empty()) return g;
  const clip::Tensor h = embed_host(host);
  const size_t dim = size_t(g.dim(1));
  clip::Tensor out({int64_t(rows.size()), int64_t(dim)});
  auto place = [&](const clip::Tensor& e, const std::vector<size_t>& at) {
    for (size_t k = 0; k < at.size(); ++k) std::memcpy(out.ptr() + at[k] * dim, e.ptr() + k * dim, dim * 4);
  };
  place(g, at_gpu);
  place(h, at_host);
  return out;
}

// Rows in host memory (preprocessed pixels, or RGB), in one engine call.
clip::Tensor Encoder::embed_host(const std::vector<size_t>& rows) {
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

void Encoder::keep(const std::vector<size_t>& rows, const clip::Tensor& e) {
  const size_t dim = size_t(e.dim(1));
  for (size_t i = 0; i < rows.size(); ++i) {
    const Pending& row = batch_[rows[i]];
    Part& p = open_[{row.file, row.part}];
    if (!p.error.empty()) continue;          // failed meanwhile: its frames are dropped
    if (row.attempt != p.attempt) continue;  // from a decoding given up since
    p.times.push_back(row.time);
    p.embeddings.insert(p.embeddings.end(), e.ptr() + i * dim, e.ptr() + (i + 1) * dim);
  }
}

bool Encoder::flush() {
  if (batch_.empty()) return true;
  const auto t0 = Clock::now();
  std::vector<size_t> all(batch_.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  try {
    if (lane_.simulate_at_batch > 0 && batches_ + 1 == lane_.simulate_at_batch)
      throw clip::DeviceError(engine_.device() + ": simulated device failure (test)");
    clip::Tensor e = embed(all);
    clip::l2_normalize_rows(e);
    keep(all, e);
  } catch (const std::exception& err) {
    // The device itself failed: with another lane alive, this one stops and
    // its unfinished parts are decoded again for the others (nothing of
    // them reached the joiner).
    if (dynamic_cast<const clip::DeviceError*>(&err) && lane_.lose && lane_.lose(err.what())) {
      lost_ = err.what();
      clear_batch();
      open_.clear();
      return false;
    }
    // The batch mixes files: embed each part's frames alone, so only the
    // file whose frame the engine rejects fails.
    std::map<PartKey, std::vector<size_t>> by_part;
    for (size_t i = 0; i < batch_.size(); ++i) by_part[{batch_[i].file, batch_[i].part}].push_back(i);
    for (const auto& [key, rows] : by_part) {
      try {
        clip::Tensor e = embed(rows);
        clip::l2_normalize_rows(e);
        keep(rows, e);
      } catch (const std::exception& part_err) {
        // The part fails, unless its rows are all from a decoding given up
        // since (whose failure does not matter).
        Part& p = open_[key];
        const bool current =
            std::any_of(rows.begin(), rows.end(), [&](size_t r) { return batch_[r].attempt == p.attempt; });
        if (p.error.empty() && current) p.error = naming(files_[key.first], part_err.what());
      }
    }
  }
  embed_s_ += since(t0);
  ++batches_;
  for (const Pending& p : batch_) --open_[{p.file, p.part}].in_batch;
  const long n = long(batch_.size());
  frames_ += n;
  clear_batch();
  finish_ready();
  progress_.embedded(n, open_.size(), lane_.index);
  return true;
}

void Encoder::clear_batch() {
  batch_.clear();
  pixel_rows_.clear();
  images_.clear();
  device_.clear();  // their GPU buffers go back to the decoders' pool
}

void Encoder::finish_ready() {
  for (auto it = open_.begin(); it != open_.end();) {
    Part& p = it->second;
    if (!p.ended() || p.in_batch > 0) {
      ++it;
      continue;
    }
    FinishedPart done{std::move(*p.end), std::move(p.error), std::move(p.times), std::move(p.embeddings)};
    if (!out_.add(std::move(done))) writer_gone_ = true;
    it = open_.erase(it);
  }
}

}  // namespace clipfind
