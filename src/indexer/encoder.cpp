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
      restart_if_later(o, e.part, e.attempt);
      if (!e.ok && o.error.empty()) o.error = e.error;
      o.parts_total = e.parts;
      Part& p = o.part(e.part);
      if (!p.end) ++o.parts_ended;
      p.end = std::move(e);
      finish_ready();
    }
  }
}

Encoder::Part& Encoder::Open::part(int p) {
  if (size_t(p) >= parts.size()) parts.resize(size_t(p) + 1);
  return parts[size_t(p)];
}

// A file has ended and waits only for its frames in the batch.
bool Encoder::file_waits() const {
  for (const auto& [file, o] : open_) {
    if (o.ended() && o.in_batch > 0) return true;
  }
  return false;
}

// A later decoding of a part (the CPU's, after NVDEC gave the file up
// midway; NVDEC takes whole files) starts over: what the earlier one
// delivered is dropped, here and (by keep) as its rows in the batch are
// embedded.
void Encoder::restart_if_later(Open& o, int part, int attempt) {
  Part& p = o.part(part);
  if (attempt <= p.attempt) return;
  p.attempt = attempt;
  p.times.clear();
  p.embeddings.clear();
  o.error.clear();
}

void Encoder::add(SampledFrame&& f) {
  Open& o = open_[f.file];
  restart_if_later(o, f.part, f.attempt);
  ++o.in_batch;
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
    Open& o = open_[row.file];
    if (!o.error.empty()) continue;  // failed meanwhile: its frames are dropped
    Part& p = o.part(row.part);
    if (row.attempt != p.attempt) continue;  // from a decoding given up since
    p.times.push_back(row.time);
    p.embeddings.insert(p.embeddings.end(), e.ptr() + i * dim, e.ptr() + (i + 1) * dim);
  }
}

void Encoder::flush() {
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
        // Unless its rows are all from a decoding given up since (whose
        // failure does not matter).
        const bool current = std::any_of(rows.begin(), rows.end(),
                                         [&](size_t r) { return batch_[r].attempt == o.part(batch_[r].part).attempt; });
        if (o.error.empty() && current) o.error = naming(files_[file], err.what());
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
  device_.clear();  // their GPU buffers go back to the decoders' pool
  finish_ready();
  progress_.embedded(n, open_.size());
}

// The file's parts in order, as one decoding would have sampled them: with
// --every, a part's first sample (its sampler started afresh) is dropped
// when the whole video's sampler would not have kept it.
FinishedFile Encoder::join_parts(Open& o) const {
  FinishedFile f;
  const video::EverySampler every(req_.sampling.mode == video::Sampling::every ? req_.sampling.every : 1.0);
  for (Part& p : o.parts) {
    FileEnd& end = *p.end;
    if (&p == &o.parts.front()) {
      f.end = std::move(end);
    } else {
      f.end.info.duration = std::max(f.end.info.duration, end.info.duration);
      f.end.info.decoded += end.info.decoded;
    }
    size_t skip = 0;
    if (req_.sampling.mode == video::Sampling::every && !f.times.empty() && !p.times.empty() &&
        !every.joins(f.times.back(), p.times.front()))
      skip = 1;
    f.times.insert(f.times.end(), p.times.begin() + long(skip), p.times.end());
    const size_t dim = p.times.empty() ? 0 : p.embeddings.size() / p.times.size();
    f.embeddings.insert(f.embeddings.end(), p.embeddings.begin() + long(skip * dim), p.embeddings.end());
  }
  f.end.ok = o.error.empty();
  f.end.error = o.error;
  f.end.part = 0;
  f.end.parts = int(o.parts.size());
  if (!f.end.ok) {
    f.times.clear();
    f.embeddings.clear();
  }
  return f;
}

void Encoder::finish_ready() {
  for (auto it = open_.begin(); it != open_.end();) {
    Open& o = it->second;
    if (!o.ended() || o.in_batch > 0) {
      ++it;
      continue;
    }
    if (!out_.push(join_parts(o))) writer_gone_ = true;
    it = open_.erase(it);
  }
}

}  // namespace clipfind
