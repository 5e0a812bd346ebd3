#include "index/ann.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFPQFastScan.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <faiss/invlists/BlockInvertedLists.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "clip/model/mmap_file.h"
#include "index/ann_coarse.h"
#include "index/catalog.h"  // index::Error
#include "index/file_io.h"
#include "index/half.h"

namespace clipfind::index {

namespace fs = std::filesystem;
using idx_t = faiss::Index::idx_t;  // FAISS 1.7.3 has it in Index only

namespace {

// FAISS ids: slot << kOrdinalBits | frame ordinal within the video.
constexpr int kOrdinalBits = 24;
constexpr int64_t kOrdinalMask = (int64_t(1) << kOrdinalBits) - 1;
// Rows converted from half floats and handed to FAISS at a time (32 MB at dim 512).
constexpr size_t kAddChunk = 16384;

constexpr char kMagic[8] = {'C', 'L', 'I', 'P', 'F', 'A', 'N', 'N'};
constexpr char kTrailerMagic[8] = {'C', 'L', 'I', 'P', 'F', 'A', 'N', 'D'};
constexpr uint32_t kVersion = 2;  // 2: the coarse groups section
constexpr uint64_t kHeaderBytes = 4096;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t dim;
  uint64_t vectors;
  uint64_t tombstones;
  uint64_t catalog_id;
  uint64_t generation;
  uint64_t change_id;
  uint64_t trained_on;
  float train_residual;
  float recall;
  double added_residual_sum;
  uint64_t added_residual_count;
  uint64_t faiss_offset;
  uint64_t faiss_bytes;
  uint64_t slots_offset;
  uint64_t slots;
  uint64_t groups_offset;  // the coarse groups (ann_coarse.h): first[groups + 1], centroids; 0: none
  uint64_t groups;
  uint64_t trailer_offset;
  uint64_t file_size;
  uint64_t checksum;  // of every byte above
};

struct Trailer {
  char magic[8];
  uint64_t header_checksum;
  uint64_t catalog_id;
  uint64_t generation;
};

uint64_t header_checksum(const Header& h) { return fnv1a(&h, offsetof(Header, checksum)); }
uint64_t align64(uint64_t x) { return (x + 63) / 64 * 64; }

// A video's rows in the table: [start, start + count).
struct VideoRun {
  int64_t video;
  size_t start, count;
};

std::vector<VideoRun> video_runs(const FrameTable& t) {
  std::vector<VideoRun> runs;
  for (size_t r = 0; r < t.rows();) {
    size_t end = r;
    while (end < t.rows() && t.video[end] == t.video[r]) ++end;
    runs.push_back({t.video[r], r, end - r});
    r = end;
  }
  return runs;
}

void rows_to_float(const FrameTable& t, size_t first, size_t n, float* out) {
  const size_t d = size_t(t.dim);
  const uint16_t* src = t.row(first);
  for (size_t i = 0; i < n * d; ++i) out[i] = half_to_float(src[i]);
}

// PQ sub-quantisers: 4 dims each, one bit a dim (dim 512: 128 four-bit
// codes, 64 bytes a frame); 8 dims each found a stored frame among its own
// top 20 only 67% of the time on planted clusters, 4 dims 100%.
size_t pq_subquantizers(int dim) {
  for (int per : {4, 2}) {
    if (dim % per == 0) return size_t(dim / per);
  }
  return size_t(dim);
}

// From this many lists (262,144 frames) the coarse quantiser groups them
// (ann_coarse.h); below, FAISS's exact scan of the centroids is cheap.
constexpr size_t kGroupedFromLists = 2048;

// FAISS serialises through these: straight into the temporary file, and out
// of the mapped file, so neither side holds a second copy of the index.
struct FileSink : faiss::IOWriter {
  AtomicFileWriter& out;
  uint64_t offset;
  FileSink(AtomicFileWriter& o, uint64_t at) : out(o), offset(at) {}
  size_t operator()(const void* p, size_t size, size_t n) override {
    out.write_at(p, size * n, offset);
    offset += size * n;
    return n;
  }
};
struct MemorySource : faiss::IOReader {
  const uint8_t* p;
  size_t left;
  MemorySource(const uint8_t* data, size_t n) : p(data), left(n) {}
  size_t operator()(void* dst, size_t size, size_t n) override {
    if (size == 0) return n;
    const size_t items = std::min(n, left / size);
    std::memcpy(dst, p, items * size);
    p += items * size;
    left -= items * size;
    return items;
  }
};

}  // namespace

struct AnnIndex::Impl {
  std::unique_ptr<faiss::IndexIVFPQFastScan> index;  // owns its coarse quantiser
  std::vector<int64_t> slot_video;                   // video id per slot; -1: removed (tombstone)
  std::vector<int64_t> slot_frames;
  uint64_t trained_on = 0;
  float train_residual = 0;  // mean residual_sum of training rows
  double added_residual_sum = 0;
  uint64_t added_residual_count = 0;
  float recall = -1.0f;
  AnnSearchParams params;

  // Sum over rows of half the squared distance to their nearest coarse
  // centroid (1 - cosine, were the centroid a unit vector).
  double residual_sum(size_t n, const float* x) const {
    std::vector<float> d(n);
    std::vector<idx_t> l(n);
    index->quantizer->search(idx_t(n), x, 1, d.data(), l.data());
    double s = 0;
    for (float v : d) s += 0.5 * double(v);
    return s;
  }

  // Adds the rows of `runs` under new slots, kAddChunk rows to a FAISS call.
  void add_runs(const FrameTable& t, const std::vector<VideoRun>& runs) {
    const size_t d = size_t(t.dim);
    std::vector<float> x;
    std::vector<idx_t> ids;
    auto flush = [&] {
      if (ids.empty()) return;
      index->add_with_ids(idx_t(ids.size()), x.data(), ids.data());
      x.clear();
      ids.clear();
    };
    for (const VideoRun& run : runs) {
      if (run.count > size_t(kOrdinalMask)) {
        throw Error("video " + std::to_string(run.video) + " has " + std::to_string(run.count) +
                    " frames, more than the ANN index takes of one video");
      }
      const int64_t slot = int64_t(slot_video.size());
      slot_video.push_back(run.video);
      slot_frames.push_back(int64_t(run.count));
      for (size_t done = 0; done < run.count;) {
        const size_t n = std::min(run.count - done, kAddChunk - ids.size());
        const size_t at = x.size();
        x.resize(at + n * d);
        rows_to_float(t, run.start + done, n, x.data() + at);
        for (size_t i = 0; i < n; ++i) ids.push_back((slot << kOrdinalBits) | int64_t(done + i));
        done += n;
        if (ids.size() == kAddChunk) flush();
      }
    }
    flush();
  }

  size_t live() const {
    size_t n = 0;
    for (size_t s = 0; s < slot_video.size(); ++s) n += slot_video[s] >= 0 ? size_t(slot_frames[s]) : 0;
    return n;
  }
  size_t tombstones() const { return size_t(index->ntotal) - live(); }

  // Bytes in memory, counted rather than serialised (at 30M frames that
  // would copy 2 GB): coarse and PQ centroids, each list's code blocks and
  // ids, the slot table.
  uint64_t memory_bytes() const {
    uint64_t bytes = uint64_t(index->nlist) * uint64_t(index->d) * sizeof(float);
    if (const auto* grouped = dynamic_cast<const GroupedCoarse*>(index->quantizer)) {
      bytes += uint64_t(index->nlist + grouped->groups().groups()) * sizeof(float) +  // norms
               grouped->groups().centroids.size() * sizeof(float) + grouped->groups().first.size() * sizeof(int64_t);
    }
    bytes += index->pq.centroids.size() * sizeof(float);
    const auto* blocks = dynamic_cast<const faiss::BlockInvertedLists*>(index->invlists);
    for (size_t l = 0; l < index->nlist; ++l) {
      const size_t n = index->invlists->list_size(l);
      bytes += n * sizeof(idx_t);
      bytes += blocks ? (n + blocks->n_per_block - 1) / blocks->n_per_block * blocks->block_size
                      : n * index->invlists->code_size;
    }
    return bytes + slot_video.size() * 2 * sizeof(int64_t);
  }
};

AnnIndex::AnnIndex() : impl_(std::make_unique<Impl>()) {}
AnnIndex::~AnnIndex() = default;
bool ann_available() { return true; }
std::string ann_backend() {
  return "FAISS " + std::to_string(FAISS_VERSION_MAJOR) + "." + std::to_string(FAISS_VERSION_MINOR) + "." +
         std::to_string(FAISS_VERSION_PATCH) + " (IVF-PQ 4-bit fast-scan, lists grouped from " +
         std::to_string(kGroupedFromLists) + ", re-ranked with the fp16 rows)";
}
const AnnSearchParams& AnnIndex::params() const { return impl_->params; }
void AnnIndex::set_params(const AnnSearchParams& p) {
  impl_->params = p;
  impl_->index->nprobe = size_t(std::max(1, p.nprobe));
}

std::unique_ptr<AnnIndex> AnnIndex::build(const FrameTable& t) {
  if (t.rows() == 0) throw Error("no frames to build an ANN index of");
  std::unique_ptr<AnnIndex> a(new AnnIndex);
  Impl& m = *a->impl_;
  const size_t n = t.rows(), d = size_t(t.dim);
  // nlist ~ 4 sqrt(N) (FAISS's guideline), at least 39 training rows per
  // list, which FAISS asks for.
  const size_t nlist = std::clamp<size_t>(size_t(4 * std::sqrt(double(n))), 1, std::max<size_t>(1, n / 39));
  // L2, which ranks unit vectors as cosine does: Debian FAISS 1.7.3's
  // fast-scan loses accuracy with METRIC_INNER_PRODUCT on residuals (self
  // found in the top 20: 91% against L2's 100% on planted clusters).
  auto* flat = new faiss::IndexFlatL2(idx_t(d));
  m.index =
      std::make_unique<faiss::IndexIVFPQFastScan>(flat, d, nlist, pq_subquantizers(t.dim), 4, faiss::METRIC_L2, 32);
  m.index->own_fields = true;
  m.index->nprobe = size_t(m.params.nprobe);
  m.index->cp.niter = 10;  // k-means converges enough for a coarse split; 25 costs 2.5x the training time
  m.index->verbose = false;
  // About five videos are held out of training (every tenth of 10 to 99):
  // the fit of their frames is what frames of new videos are compared with
  // (drift). Rows of the trained videos' own scenes sit much closer to the
  // centroids than any new video's do (13x at 200k planted frames). Held-out
  // videos are searched as poorly as new ones, so no more than that: at 1M
  // planted frames, text-like recall@10 0.961 holding out every tenth video,
  // 0.973 every fiftieth, 0.987 none.
  const std::vector<VideoRun> runs = video_runs(t);
  const bool hold_out = runs.size() >= 10;
  const size_t held_every = std::max<size_t>(10, runs.size() / 5);
  std::vector<size_t> trained_rows, held_rows;  // row numbers
  for (size_t v = 0; v < runs.size(); ++v) {
    auto& into = hold_out && v % held_every == held_every - 1 ? held_rows : trained_rows;
    for (size_t r = 0; r < runs[v].count; ++r) into.push_back(runs[v].start + r);
  }
  if (!hold_out) held_rows = trained_rows;
  // Training sample: 40 rows a list, evenly spread over the trained rows so
  // every video (rows are grouped by video) contributes. A small catalog is
  // repeated up to kMinTrainRows: 4-bit PQ trains 16 centroids per
  // sub-quantiser and FAISS refuses fewer training rows.
  constexpr size_t kMinTrainRows = 1024;
  const size_t nt = trained_rows.size();
  const size_t ns = std::max(kMinTrainRows, std::min(nt, std::max<size_t>(40 * nlist, 10000)));
  std::vector<float> sample(ns * d);
  for (size_t i = 0; i < ns; ++i) {
    rows_to_float(t, trained_rows[ns <= nt ? i * nt / ns : i % nt], 1, sample.data() + i * d);
  }
  if (nlist >= kGroupedFromLists) {
    // FAISS's train() sees a trained quantiser of nlist entries and trains
    // only the PQ codes.
    CoarseGroups groups;
    const std::vector<float> centroids = train_grouped_lists(ns, d, sample.data(), nlist, m.index->cp.niter, &groups);
    flat->add(idx_t(nlist), centroids.data());
    m.index->quantizer = nullptr;  // the wrapper owns `flat` from here, even if it throws
    m.index->quantizer = new GroupedCoarse(std::unique_ptr<faiss::IndexFlatL2>(flat), std::move(groups));
  }
  m.index->train(idx_t(ns), sample.data());
  trained_rows = {};
  const size_t nr = std::min<size_t>({ns, held_rows.size(), 20000});
  for (size_t i = 0; i < nr; ++i) rows_to_float(t, held_rows[i * held_rows.size() / nr], 1, sample.data() + i * d);
  m.train_residual = float(m.residual_sum(nr, sample.data()) / double(nr));
  sample = {};
  m.trained_on = n;
  m.add_runs(t, video_runs(t));
  return a;
}

AnnIndex::Update AnnIndex::update(const FrameTable& t, bool ignore_drift) {
  Impl& m = *impl_;
  std::unordered_map<int64_t, size_t> slot_of;  // live video -> slot
  for (size_t s = 0; s < m.slot_video.size(); ++s) {
    if (m.slot_video[s] >= 0) slot_of[m.slot_video[s]] = s;
  }
  std::vector<VideoRun> added;
  std::vector<size_t> removed;
  std::unordered_set<int64_t> present;
  for (const VideoRun& run : video_runs(t)) {
    present.insert(run.video);
    const auto it = slot_of.find(run.video);
    if (it != slot_of.end() && size_t(m.slot_frames[it->second]) == run.count) continue;
    if (it != slot_of.end()) removed.push_back(it->second);  // re-indexed: its frames changed
    added.push_back(run);
  }
  for (const auto& [video, slot] : slot_of) {
    if (!present.count(video)) removed.push_back(slot);
  }
  if (added.empty() && removed.empty()) return Update::unchanged;
  // nlist was chosen for the size trained at: far from it, lists are too long
  // (slow) or too short (poor recall).
  const size_t after = t.rows();
  if (!ignore_drift && (after > 2 * m.trained_on || 2 * after < m.trained_on)) return Update::needs_retraining;
  // Drift: new frames sit farther from the centroids than the training rows did.
  double residual = m.added_residual_sum;
  uint64_t residual_n = m.added_residual_count;
  {
    const size_t d = size_t(t.dim);
    std::vector<float> probe;
    for (const VideoRun& run : added) {
      for (size_t r = 0; r < run.count; r += 16) {
        probe.resize(probe.size() + d);
        rows_to_float(t, run.start + r, 1, probe.data() + probe.size() - d);
      }
    }
    if (!probe.empty()) {
      residual += m.residual_sum(probe.size() / d, probe.data());
      residual_n += probe.size() / d;
    }
  }
  constexpr uint64_t kDriftMinRows = 256;  // fewer sampled rows say little
  if (!ignore_drift && residual_n >= kDriftMinRows &&
      residual / double(residual_n) > kAnnDriftRatio * double(m.train_residual) + 1e-3) {
    return Update::needs_retraining;
  }
  for (size_t s : removed) m.slot_video[s] = -1;
  m.add_runs(t, added);
  m.added_residual_sum = residual;
  m.added_residual_count = residual_n;
  if (m.tombstones() * 10 > size_t(m.index->ntotal)) {
    // Refill the lists with the live videos, keeping the trained quantisers.
    m.index->reset();
    m.slot_video.clear();
    m.slot_frames.clear();
    m.add_runs(t, video_runs(t));
  }
  return Update::updated;
}

std::vector<Hit> AnnIndex::top_k(const FrameTable& t, const float* query, size_t n) const {
  const Impl& m = *impl_;
  const size_t want = std::min<size_t>(n * std::max<size_t>(1, m.params.rerank_factor), size_t(m.index->ntotal));
  if (want == 0) return {};
  std::vector<float> dist(want);
  std::vector<idx_t> ids(want);
  // One query: FAISS's OpenMP threads cost more than they bring, and spin
  // for milliseconds on a busy machine (measured: 20 ms a query at load 12).
  omp_set_num_threads(1);
  m.index->search(1, query, idx_t(want), dist.data(), ids.data());
  std::vector<Hit> hits;
  hits.reserve(want);
  int64_t cached_video = -1;
  size_t cached_start = 0;
  for (const idx_t id : ids) {
    if (id < 0) continue;
    const size_t slot = size_t(id >> kOrdinalBits);
    const size_t ord = size_t(id & kOrdinalMask);
    if (slot >= m.slot_video.size() || m.slot_video[slot] < 0) continue;  // a removed video's frame
    const int64_t video = m.slot_video[slot];
    if (video != cached_video) {
      cached_start = size_t(std::lower_bound(t.video.begin(), t.video.end(), video) - t.video.begin());
      cached_video = video;
    }
    const size_t row = cached_start + ord;
    if (row >= t.rows() || t.video[row] != video) continue;  // the table is of another state: skip, never misread
    hits.push_back({row, row_score(t, row, query)});
  }
  std::sort(hits.begin(), hits.end(), ranks_before);
  if (hits.size() > n) hits.resize(n);
  return hits;
}

float AnnIndex::measure_recall(const FrameTable& t, int queries) {
  std::mt19937 rng(7);
  // Noise of norm ~0.5: the query is near a frame (cosine ~0.9), not one.
  std::normal_distribution<float> noise(0.0f, 0.5f / std::sqrt(float(t.dim)));
  const size_t d = size_t(t.dim);
  std::vector<float> q(d);
  size_t found = 0, asked = 0;
  for (int i = 0; i < queries; ++i) {
    rows_to_float(t, size_t(rng() % t.rows()), 1, q.data());
    float norm = 0;
    for (float& x : q) {
      x += noise(rng);
      norm += x * x;
    }
    for (float& x : q) x /= std::sqrt(norm);
    // As search asks for k = 10: kCandidatesPerResult per result, of which
    // the best 10 frames are compared.
    const auto exact = index::top_k(t, q.data(), 10);
    auto approx = top_k(t, q.data(), 10 * kCandidatesPerResult);
    if (approx.size() > 10) approx.resize(10);
    for (const Hit& e : exact) {
      asked++;
      found += std::any_of(approx.begin(), approx.end(), [&](const Hit& a) { return a.row == e.row; });
    }
  }
  impl_->recall = asked ? float(double(found) / double(asked)) : -1.0f;
  return impl_->recall;
}

AnnInfo AnnIndex::info() const {
  const Impl& m = *impl_;
  AnnInfo i;
  i.vectors = m.live();
  i.tombstones = m.tombstones();
  i.lists = m.index->nlist;
  if (const auto* grouped = dynamic_cast<const GroupedCoarse*>(m.index->quantizer)) {
    i.coarse_groups = grouped->groups().groups();
  }
  i.code_bytes = int(m.index->M2 / 2);
  i.trained_on = m.trained_on;
  i.memory_bytes = m.memory_bytes();
  i.recall_at_10 = m.recall;
  i.nprobe = m.params.nprobe;
  if (m.added_residual_count > 0 && m.train_residual > 0) {
    i.drift = float(m.added_residual_sum / double(m.added_residual_count) / double(m.train_residual));
  }
  return i;
}

void AnnIndex::write(const fs::path& file, const CatalogStamp& stamp) const {
  const Impl& m = *impl_;
  AtomicFileWriter out(file);
  FileSink sink(out, kHeaderBytes);
  // FAISS serialises the lists' centroids as the flat index they are kept
  // in; the groups follow in a section of their own.
  const auto* grouped = dynamic_cast<const GroupedCoarse*>(m.index->quantizer);
  try {
    faiss::Index* const quantizer = m.index->quantizer;
    if (grouped) m.index->quantizer = grouped->lists();
    struct Restore {
      faiss::IndexIVF& ivf;
      faiss::Index* q;
      ~Restore() { ivf.quantizer = q; }
    } restore{*m.index, quantizer};
    faiss::write_index(m.index.get(), &sink);
  } catch (const std::exception& e) {  // FaissException, bad_alloc
    throw Error(out.temp().string() + ": cannot write the ANN index: " + e.what());
  }
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  h.dim = uint32_t(m.index->d);
  h.vectors = m.live();
  h.tombstones = m.tombstones();
  h.catalog_id = stamp.catalog_id;
  h.generation = stamp.generation;
  h.change_id = stamp.change_id;
  h.trained_on = m.trained_on;
  h.train_residual = m.train_residual;
  h.recall = m.recall;
  h.added_residual_sum = m.added_residual_sum;
  h.added_residual_count = m.added_residual_count;
  h.faiss_offset = kHeaderBytes;
  h.faiss_bytes = sink.offset - kHeaderBytes;
  h.slots_offset = align64(sink.offset);
  h.slots = m.slot_video.size();
  uint64_t end = h.slots_offset + h.slots * 16;
  if (grouped) {
    h.groups = grouped->groups().groups();
    h.groups_offset = align64(end);
    end = h.groups_offset + (h.groups + 1) * sizeof(int64_t) + h.groups * h.dim * sizeof(float);
  }
  h.trailer_offset = align64(end);
  h.file_size = h.trailer_offset + sizeof(Trailer);
  h.checksum = header_checksum(h);
  std::vector<int64_t> slots;
  slots.reserve(2 * h.slots);
  for (size_t s = 0; s < h.slots; ++s) {
    slots.push_back(m.slot_video[s]);
    slots.push_back(m.slot_frames[s]);
  }
  out.write_at(slots.data(), slots.size() * sizeof(int64_t), h.slots_offset);
  if (grouped) {
    const CoarseGroups& g = grouped->groups();
    out.write_at(g.first.data(), g.first.size() * sizeof(int64_t), h.groups_offset);
    out.write_at(g.centroids.data(), g.centroids.size() * sizeof(float),
                 h.groups_offset + g.first.size() * sizeof(int64_t));
  }
  Trailer tr{};
  std::memcpy(tr.magic, kTrailerMagic, sizeof kTrailerMagic);
  tr.header_checksum = h.checksum;
  tr.catalog_id = h.catalog_id;
  tr.generation = h.generation;
  out.write_at(&tr, sizeof tr, h.trailer_offset);
  std::vector<char> page(kHeaderBytes, 0);  // the header last: a torn file has none that checks
  std::memcpy(page.data(), &h, sizeof h);
  out.write_at(page.data(), page.size(), 0);
  out.commit(h.file_size);
}

std::unique_ptr<AnnIndex> AnnIndex::open(const fs::path& file, CatalogStamp* stamp, std::string* why) {
  auto reject = [&](const std::string& reason) -> std::unique_ptr<AnnIndex> {
    if (why) *why = file.string() + ": " + reason;
    return nullptr;
  };
  std::error_code ec;
  if (!fs::exists(file, ec)) return reject("missing");
  std::unique_ptr<clip::MappedFile> map;
  try {
    map = std::make_unique<clip::MappedFile>(file);
  } catch (const std::exception& e) {
    return reject(e.what());
  }
  Header h;
  const std::string bad = read_checked_header(map->data(), map->size(), kHeaderBytes, kMagic, kVersion, "ANN file", &h);
  if (!bad.empty()) return reject(bad);
  if (map->size() != h.file_size) {
    return reject("torn (" + std::to_string(map->size()) + " bytes, its header says " + std::to_string(h.file_size) +
                  ")");
  }
  if (h.dim == 0 || h.dim > (1u << 16)) return reject("damaged header (dimension " + std::to_string(h.dim) + ")");
  const uint64_t groups_bytes = (h.groups + 1) * sizeof(int64_t) + h.groups * uint64_t(h.dim) * sizeof(float);
  if (h.faiss_offset != kHeaderBytes || h.slots_offset < h.faiss_offset + h.faiss_bytes || h.slots > h.file_size / 16 ||
      h.groups > h.file_size / 8 ||
      (h.groups &&
       (h.groups_offset < h.slots_offset + h.slots * 16 || h.trailer_offset < h.groups_offset + groups_bytes)) ||
      h.trailer_offset < h.slots_offset + h.slots * 16 || h.file_size != h.trailer_offset + sizeof(Trailer)) {
    return reject("damaged header (section offsets do not fit)");
  }
  Trailer tr;
  std::memcpy(&tr, map->data() + h.trailer_offset, sizeof tr);
  if (std::memcmp(tr.magic, kTrailerMagic, sizeof kTrailerMagic) != 0 || tr.header_checksum != h.checksum ||
      tr.catalog_id != h.catalog_id || tr.generation != h.generation) {
    return reject("torn (its trailer does not match its header)");
  }
  std::unique_ptr<AnnIndex> a(new AnnIndex);
  Impl& m = *a->impl_;
  try {
    MemorySource src(map->data() + h.faiss_offset, h.faiss_bytes);
    std::unique_ptr<faiss::Index> raw(faiss::read_index(&src));
    auto* ivf = dynamic_cast<faiss::IndexIVFPQFastScan*>(raw.get());
    if (!ivf || ivf->d != idx_t(h.dim)) return reject("damaged (not the IVF-PQ fast-scan index it should hold)");
    raw.release();
    m.index.reset(ivf);
    if (h.groups) {
      auto* flat = dynamic_cast<faiss::IndexFlatL2*>(ivf->quantizer);
      if (!flat) return reject("damaged (its grouped lists are not kept as a flat index)");
      CoarseGroups g;
      const auto* first = reinterpret_cast<const int64_t*>(map->data() + h.groups_offset);
      g.first.assign(first, first + h.groups + 1);
      const auto* centroids = reinterpret_cast<const float*>(first + h.groups + 1);
      g.centroids.assign(centroids, centroids + h.groups * h.dim);
      const std::string bad = g.check(size_t(flat->ntotal), h.dim);
      if (!bad.empty() || size_t(flat->ntotal) != ivf->nlist) return reject("damaged (coarse groups: " + bad + ")");
      ivf->quantizer = nullptr;  // the wrapper owns `flat` from here, even if it throws
      ivf->quantizer = new GroupedCoarse(std::unique_ptr<faiss::IndexFlatL2>(flat), std::move(g));
    }
  } catch (const std::exception& e) {
    return reject(std::string("damaged (FAISS cannot read it: ") + e.what() + ")");
  }
  const auto* slots = reinterpret_cast<const int64_t*>(map->data() + h.slots_offset);
  for (size_t s = 0; s < h.slots; ++s) {
    m.slot_video.push_back(slots[2 * s]);
    m.slot_frames.push_back(slots[2 * s + 1]);
  }
  if (m.live() != h.vectors || size_t(m.index->ntotal) != h.vectors + h.tombstones) {
    return reject("damaged (its slot table does not match its index)");
  }
  m.trained_on = h.trained_on;
  m.train_residual = h.train_residual;
  m.recall = h.recall;
  m.added_residual_sum = h.added_residual_sum;
  m.added_residual_count = h.added_residual_count;
  m.index->nprobe = size_t(m.params.nprobe);
  if (stamp) *stamp = {h.catalog_id, h.generation, h.change_id};
  return a;
}

}  // namespace clipfind::index
