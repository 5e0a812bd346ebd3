// clipfind._core: the Python bindings (nanobind) over the engine (clip/clip.h)
// and the index (index/query.h), as `import clipfind` exposes them.
//
// Conventions at this boundary:
//  - Arguments are converted while the GIL is held; the engine and the index
//    then run with it released, so other Python threads go on meanwhile.
//  - An Engine serves one call at a time (its backend owns scratch buffers):
//    a per-engine mutex, taken after the GIL is released, so two threads
//    sharing an engine queue instead of deadlocking; two engines overlap.
//  - Embeddings come back as float32 numpy arrays that own the engine's
//    clip::Tensor (moved into a capsule): no copy.
//  - clip::Error, index::Error and the std::runtime_error of the index become
//    clipfind.Error (a ValueError) with the engine's message; a missing file
//    or folder is an OSError (FileNotFoundError) naming it.
#include <fnmatch.h>
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "clip/clip.h"
#include "index/catalog.h"
#include "index/fingerprint.h"
#include "index/query.h"

namespace nb = nanobind;
namespace fs = std::filesystem;
using namespace nb::literals;

namespace {

// ---- arguments -------------------------------------------------------------

// The one place that turns the Python arguments into EngineOptions; an
// unknown precision is the engine's clip::Error (a ValueError in Python).
clip::EngineOptions engine_options(const std::string& device, const std::optional<std::string>& precision,
                                   int threads) {
  clip::EngineOptions o;
  o.device = device;
  if (precision) o.precision = clip::parse_precision(*precision);
  o.threads = threads;
  return o;
}

// A file or folder that is missing or of the wrong kind: OSError(code,
// message, path) in Python, so FileNotFoundError for ENOENT.
class PathError : public std::runtime_error {
 public:
  PathError(int code, const std::string& message, fs::path path)
      : std::runtime_error(message), code(code), path(std::move(path)) {}
  int code;
  fs::path path;
};

[[noreturn]] void throw_missing(const fs::path& path, const std::string& what) { throw PathError(ENOENT, what, path); }

// One text or a sequence of texts; a bare str is a batch of one (as
// transformers' processors take it).
std::vector<std::string> text_list(const nb::handle& texts) {
  if (nb::isinstance<nb::str>(texts)) return {nb::cast<std::string>(texts)};
  if (!nb::isinstance<nb::sequence>(texts)) {
    throw nb::type_error("texts: expected a str or a sequence of str");
  }
  std::vector<std::string> out;
  out.reserve(nb::len(texts));
  size_t i = 0;
  for (nb::handle t : texts) {
    if (!nb::isinstance<nb::str>(t)) {
      throw nb::type_error(
          ("texts[" + std::to_string(i) + "]: expected str, got " + nb::cast<std::string>(nb::type_name(t.type())))
              .c_str());
    }
    out.push_back(nb::cast<std::string>(t));
    ++i;
  }
  return out;
}

using RgbArray = nb::ndarray<const uint8_t, nb::ndim<3>, nb::c_contig, nb::device::cpu>;

// An HxWx3 uint8 array from a numpy array (or anything with the buffer or
// DLPack protocol) or a PIL image (converted to RGB); a C-contiguous copy only
// when the array is not contiguous. Other dtypes are refused, not cast: a
// float image in [0, 1] cast to uint8 would be black.
RgbArray rgb_array(nb::handle image, const std::string& what) {
  nb::object obj = nb::borrow(image);
  if (nb::hasattr(obj, "convert") && nb::hasattr(obj, "mode") && nb::hasattr(obj, "size")) {  // PIL.Image
    if (nb::cast<std::string>(obj.attr("mode")) != "RGB") obj = obj.attr("convert")("RGB");
    obj = nb::module_::import_("numpy").attr("asarray")(obj);
  }
  nb::ndarray<nb::ro> any;
  if (!nb::try_cast(obj, any, false)) {
    throw nb::type_error((what + ": expected a uint8 numpy array of shape (H, W, 3) or a PIL image, got " +
                          nb::cast<std::string>(nb::type_name(obj.type())))
                             .c_str());
  }
  if (any.dtype() != nb::dtype<uint8_t>()) {
    throw nb::type_error(
        (what + ": expected dtype uint8 (RGB bytes); convert with (x * 255).round().astype('uint8')").c_str());
  }
  if (any.ndim() != 3 || any.shape(2) != 3 || any.shape(0) == 0 || any.shape(1) == 0) {
    std::string shape = "(";
    for (size_t d = 0; d < any.ndim(); ++d) shape += (d ? ", " : "") + std::to_string(any.shape(d));
    throw nb::value_error((what + ": shape " + shape + (any.ndim() == 1 ? ",)" : ")") +
                           "; expected (H, W, 3) RGB (use PIL's convert('RGB') for other modes)")
                              .c_str());
  }
  return nb::cast<RgbArray>(obj, true);  // copies only to make it contiguous
}

// ---- results ---------------------------------------------------------------

using Embeddings = nb::ndarray<nb::numpy, float, nb::ndim<2>>;

// The tensor's buffer, owned by the returned array (no copy).
Embeddings to_numpy(clip::Tensor&& t) {
  auto* owned = new clip::Tensor(std::move(t));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<clip::Tensor*>(p); });
  const size_t rows = owned->shape.size() == 2 ? size_t(owned->shape[0]) : 0;
  const size_t cols = owned->shape.size() == 2 ? size_t(owned->shape[1]) : 0;
  return Embeddings(owned->ptr(), {rows, cols}, owner);
}

// ---- Engine ----------------------------------------------------------------

class PyEngine {
 public:
  PyEngine(const fs::path& model_dir, const std::string& device, const std::optional<std::string>& precision,
           int threads)
      : model_dir_(fs::absolute(model_dir)) {
    std::error_code ec;
    if (!fs::exists(model_dir_, ec)) throw_missing(model_dir_, "no model folder here");
    if (!fs::is_directory(model_dir_, ec)) {
      throw PathError(ENOTDIR, "a model is a folder (config.json, model.safetensors, ...)", model_dir_);
    }
    const clip::EngineOptions options = engine_options(device, precision, threads);
    nb::gil_scoped_release release;
    engine_ = clip::Engine::load(model_dir_, options);
    device_ = engine_->device();
    precision_ = clip::precision_name(engine_->precision());
  }

  // Runs fn(engine) with the GIL released and this engine to itself.
  template <typename Fn>
  auto run(Fn&& fn) {
    nb::gil_scoped_release release;
    std::lock_guard lock(mutex_);
    return fn(*engine_);
  }

  Embeddings embed_texts(nb::handle texts, bool normalize) {
    const std::vector<std::string> list = text_list(texts);
    return finish(run([&](clip::Engine& e) { return e.embed_texts(list); }), normalize);
  }

  Embeddings embed_images(nb::handle images, bool normalize) {
    std::vector<RgbArray> arrays;  // kept alive (and referenced) while the engine reads them
    std::vector<clip::ImageView> views;
    nb::ndarray<nb::ro> any;
    const bool is_array = nb::try_cast(images, any, false);
    if (is_array && any.ndim() == 4) {  // (N, H, W, 3): N images of one size
      if (any.dtype() != nb::dtype<uint8_t>()) throw nb::type_error("images: expected dtype uint8 (RGB bytes)");
      if (any.shape(3) != 3 || any.shape(1) == 0 || any.shape(2) == 0) {
        throw nb::value_error("images: a 4-d array must have shape (N, H, W, 3)");
      }
      const auto batch = nb::cast<nb::ndarray<const uint8_t, nb::ndim<4>, nb::c_contig, nb::device::cpu>>(images, true);
      const size_t n = batch.shape(0), h = batch.shape(1), w = batch.shape(2);
      for (size_t i = 0; i < n; ++i) views.push_back({int(w), int(h), batch.data() + i * h * w * 3});
      return finish(embed_views(views), normalize);
    }
    if (is_array || nb::isinstance<nb::str>(images) || !nb::isinstance<nb::sequence>(images)) {
      arrays.push_back(rgb_array(images, "image"));  // one image: a batch of one
    } else {
      arrays.reserve(nb::len(images));
      size_t i = 0;
      for (nb::handle im : images) arrays.push_back(rgb_array(im, "images[" + std::to_string(i++) + "]"));
    }
    for (const auto& a : arrays) views.push_back({int(a.shape(1)), int(a.shape(0)), a.data()});
    return finish(embed_views(views), normalize);
  }

  Embeddings embed_image_files(nb::handle files, bool normalize) {
    std::vector<fs::path> paths;
    if (nb::isinstance<nb::str>(files) || !nb::isinstance<nb::sequence>(files)) {
      paths.push_back(nb::cast<fs::path>(files));
    } else {
      paths = nb::cast<std::vector<fs::path>>(files);
    }
    for (const auto& p : paths) {
      std::error_code ec;
      if (!fs::exists(p, ec)) throw_missing(p, "no image file here");
    }
    return finish(run([&](clip::Engine& e) { return e.embed_image_files(paths); }), normalize);
  }

  Embeddings embed_pixels(const nb::ndarray<const float, nb::ndim<4>, nb::c_contig, nb::device::cpu>& pixels,
                          bool normalize) {
    clip::Tensor t(
        {int64_t(pixels.shape(0)), int64_t(pixels.shape(1)), int64_t(pixels.shape(2)), int64_t(pixels.shape(3))});
    const float* src = pixels.data();
    return finish(run([&](clip::Engine& e) {
                    std::copy(src, src + t.numel(), t.ptr());
                    return t.shape[0] == 0 ? empty(e) : e.embed_pixels(t);
                  }),
                  normalize);
  }

  nb::object tokenize(nb::handle texts) {
    const bool one = nb::isinstance<nb::str>(texts);
    const std::vector<std::string> list = text_list(texts);
    std::vector<std::vector<int32_t>> ids(list.size());
    for (size_t i = 0; i < list.size(); ++i) ids[i] = engine_->tokenize(list[i]);  // fast: keeps the GIL
    return one ? nb::cast(ids[0]) : nb::cast(ids);
  }

  // For bench/python: the median seconds of the C++ call alone (inputs
  // converted once, no Python in the loop), to subtract from the Python call's.
  double cpp_seconds_per_call(nb::handle inputs, const std::string& kind, int repeats) {
    std::vector<std::string> texts;
    std::vector<RgbArray> arrays;
    std::vector<clip::ImageView> views;
    if (kind == "texts") {
      texts = text_list(inputs);
    } else if (kind == "images") {
      size_t i = 0;
      for (nb::handle im : inputs) arrays.push_back(rgb_array(im, "images[" + std::to_string(i++) + "]"));
      for (const auto& a : arrays) views.push_back({int(a.shape(1)), int(a.shape(0)), a.data()});
    } else {
      throw nb::value_error("kind: 'texts' or 'images'");
    }
    std::vector<double> seconds(size_t(std::max(1, repeats)));
    run([&](clip::Engine& e) {
      for (double& s : seconds) {
        const auto t0 = std::chrono::steady_clock::now();
        clip::Tensor t = kind == "texts" ? e.embed_texts(texts) : e.embed_image_views(views);
        s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      return 0;
    });
    std::nth_element(seconds.begin(), seconds.begin() + seconds.size() / 2, seconds.end());
    return seconds[seconds.size() / 2];
  }

  int projection_dim() const { return engine_->projection_dim(); }
  const std::string& device() const { return device_; }
  const std::string& precision() const { return precision_; }
  std::string backend() const { return engine_->backend_name(); }
  const fs::path& model_dir() const { return model_dir_; }
  bool has_text() const { return engine_->has_text(); }
  bool has_vision() const { return engine_->has_vision(); }
  int image_size() const { return engine_->config().vision ? engine_->config().vision->image_size : 0; }

 private:
  static clip::Tensor empty(const clip::Engine& e) { return clip::Tensor({0, e.projection_dim()}); }

  clip::Tensor embed_views(const std::vector<clip::ImageView>& views) {
    return run([&](clip::Engine& e) { return views.empty() ? empty(e) : e.embed_image_views(views); });
  }

  static Embeddings finish(clip::Tensor&& t, bool normalize) {
    if (normalize) clip::l2_normalize_rows(t);
    return to_numpy(std::move(t));
  }

  fs::path model_dir_;
  std::unique_ptr<clip::Engine> engine_;
  std::mutex mutex_;
  std::string device_, precision_;
};

// ---- Index -----------------------------------------------------------------

// A clipfind index opened for searching. It never writes (the catalog is the
// same SQLite file `clipfind search` opens, in WAL mode, so `clipfind index`
// may write meanwhile), and re-reads the frames when the catalog's stamp
// changed since the last search.
class PyIndex {
 public:
  PyIndex(const fs::path& dir, std::shared_ptr<PyEngine> engine, const std::optional<fs::path>& model,
          const std::string& device, const std::optional<std::string>& precision, int threads)
      : dir_(dir),
        engine_(std::move(engine)),
        model_(model ? model->string() : ""),
        device_(device),
        precision_(precision),
        threads_(threads) {
    std::error_code ec;
    if (!fs::exists(dir_, ec)) throw_missing(dir_, "no index here (run `clipfind index` first)");
    nb::gil_scoped_release release;
    catalog_ = std::make_unique<clipfind::index::Catalog>(dir_, false);
    if (engine_) clipfind::index::query_model(*catalog_, engine_->model_dir().string());  // same model?
  }

  nb::list search(nb::handle text, nb::handle image, nb::handle embedding, int k,
                  const std::optional<std::string>& video) {
    const int given = int(!text.is_none()) + int(!image.is_none()) + int(!embedding.is_none());
    if (given != 1) throw nb::value_error("search: give exactly one of text=, image= or embedding=");
    if (k < 1) throw nb::value_error("search: k must be at least 1");
    PyEngine* engine = embedding.is_none() ? query_engine() : nullptr;
    clip::Tensor q;
    if (!text.is_none()) {
      if (!nb::isinstance<nb::str>(text)) throw nb::type_error("search: text must be a str");
      const std::string s = nb::cast<std::string>(text);
      q = engine->run([&](clip::Engine& e) { return e.embed_texts({s}); });
    } else if (!image.is_none()) {
      if (nb::isinstance<nb::str>(image) || nb::hasattr(image, "__fspath__")) {
        Embeddings a = engine->embed_image_files(image, false);
        q = clip::Tensor({1, int64_t(a.shape(1))});
        std::copy(a.data(), a.data() + a.shape(1), q.ptr());
      } else {
        Embeddings a = engine->embed_images(image, false);
        if (a.shape(0) != 1) throw nb::value_error("search: image must be one image");
        q = clip::Tensor({1, int64_t(a.shape(1))});
        std::copy(a.data(), a.data() + a.shape(1), q.ptr());
      }
    } else {
      const auto e = nb::cast<nb::ndarray<const float, nb::c_contig, nb::device::cpu>>(embedding, true);
      if (e.ndim() == 0 || e.size() == 0 || (e.ndim() == 2 && e.shape(0) != 1) || e.ndim() > 2) {
        throw nb::value_error("search: embedding must be one vector (dim,) or (1, dim)");
      }
      q = clip::Tensor({1, int64_t(e.size())});
      std::copy(e.data(), e.data() + e.size(), q.ptr());
    }
    std::vector<clipfind::index::Segment> segs;
    std::vector<std::string> names;  // each segment's video path, read under the lock
    {
      nb::gil_scoped_release release;
      std::lock_guard lock(mutex_);
      clip::l2_normalize_rows(q);
      refresh();
      clipfind::index::FrameTable table = table_;
      if (video) {
        table = clipfind::index::select_videos(table, [&](int64_t v) {
          const auto it = paths_.find(v);
          return it != paths_.end() && fnmatch(video->c_str(), it->second.c_str(), 0) == 0;
        });
      }
      segs = clipfind::index::search_embedding(table, q.ptr(), int(q.dim(1)), size_t(k), gap_, dir_.string());
      // SigLIP indexes: each segment's best frame as a probability.
      if (const auto model = catalog_->model()) clipfind::index::add_probabilities(segs, *model);
      for (const auto& s : segs) names.push_back(paths_.count(s.video) ? paths_.at(s.video) : std::string());
    }
    // The records of `clipfind search --json`.
    nb::list out;
    for (size_t i = 0; i < segs.size(); ++i) {
      nb::dict r;
      r["video"] = names[i];
      r["start"] = segs[i].start;
      r["end"] = segs[i].end;
      r["time"] = segs[i].time;
      r["score"] = double(segs[i].score);
      if (segs[i].probability) r["probability"] = double(*segs[i].probability);
      out.append(r);
    }
    return out;
  }

  nb::list videos() {
    std::vector<clipfind::index::VideoRecord> records;
    {
      nb::gil_scoped_release release;
      std::lock_guard lock(mutex_);
      records = catalog_->videos();
    }
    nb::list out;
    for (const auto& v : records) {
      nb::dict d;
      d["id"] = v.id;
      d["path"] = v.path;
      d["duration"] = v.duration;
      d["fps"] = v.fps;
      d["width"] = v.width;
      d["height"] = v.height;
      d["frames"] = v.frames;
      d["status"] = v.status;
      if (!v.error.empty()) d["error"] = v.error;
      out.append(d);
    }
    return out;
  }

  const fs::path& path() const { return dir_; }
  std::shared_ptr<PyEngine> engine() { return query_engine_shared(); }

 private:
  // The engine that embeds queries: the one given, else the model the index
  // records (or `model`), loaded at the first query that needs it.
  PyEngine* query_engine() { return query_engine_shared().get(); }
  std::shared_ptr<PyEngine> query_engine_shared() {
    if (!engine_) {
      std::string dir;
      {
        nb::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        dir = clipfind::index::query_model(*catalog_, model_);
      }
      engine_ = std::make_shared<PyEngine>(dir, device_, precision_, threads_);
    }
    return engine_;
  }

  // Re-reads frames, paths and gap when `clipfind index` changed the catalog.
  void refresh() {
    const auto now = catalog_->stamp();
    if (loaded_ && now == stamp_) return;
    table_ = catalog_->load_frames();
    paths_.clear();
    for (const auto& v : catalog_->videos()) paths_[v.id] = v.path;
    gap_ = clipfind::index::default_gap(*catalog_);
    stamp_ = now;
    loaded_ = true;
  }

  fs::path dir_;
  std::shared_ptr<PyEngine> engine_;
  std::string model_;
  std::string device_;
  std::optional<std::string> precision_;
  int threads_;
  std::mutex mutex_;
  std::unique_ptr<clipfind::index::Catalog> catalog_;
  bool loaded_ = false;
  clipfind::index::CatalogStamp stamp_;
  clipfind::index::FrameTable table_;
  std::map<int64_t, std::string> paths_;
  double gap_ = 2.0;
};

// OSError(errno, message, filename): Python picks the subclass
// (FileNotFoundError for ENOENT, NotADirectoryError ...).
void set_os_error(int code, const std::string& message, const std::string& filename) {
  nb::object args = nb::make_tuple(code, message, filename);
  PyErr_SetObject(PyExc_OSError, args.ptr());
}

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "clipfind's C++ engine and index (import clipfind, not this module)";
  static nb::object error = nb::exception<clip::Error>(m, "Error", PyExc_ValueError);
  error.attr("__module__") = "clipfind";
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const PathError& e) {
      set_os_error(e.code, e.what(), e.path.string());
    } catch (const fs::filesystem_error& e) {
      set_os_error(e.code().value(), e.what(), e.path1().string());
    } catch (const std::runtime_error& e) {  // clip::Error, index::Error, the index's own
      PyErr_SetString(error.ptr(), e.what());
    }
  });

  nb::class_<PyEngine>(m, "Engine")
      .def(nb::init<const fs::path&, const std::string&, const std::optional<std::string>&, int>(), "model_dir"_a,
           "device"_a = "auto", "precision"_a = nb::none(), "threads"_a = 0,
           "Loads a CLIP / SigLIP folder in transformers' layout. device: 'auto' (a usable GPU, else the CPU), "
           "'cpu', 'cuda' or 'cuda:N'; precision: None (fp32 on the CPU, fp16 on CUDA), 'fp32', 'tf32', 'fp16' "
           "or 'bf16'; threads: CPU threads (0: all).")
      .def("embed_texts", &PyEngine::embed_texts, "texts"_a, "normalize"_a = false,
           "Text embeddings, float32 (len(texts), projection_dim): transformers' get_text_features. A str is a "
           "batch of one.")
      .def("embed_images", &PyEngine::embed_images, "images"_a, "normalize"_a = false,
           "Image embeddings, float32 (n, projection_dim), of a list of uint8 (H, W, 3) RGB arrays or PIL images "
           "(any sizes), or one (N, H, W, 3) array; resized, cropped and normalised like CLIP's processor.")
      .def("embed_image_files", &PyEngine::embed_image_files, "paths"_a, "normalize"_a = false,
           "Image embeddings of PNG / JPEG files, float32 (len(paths), projection_dim).")
      .def("embed_pixels", &PyEngine::embed_pixels, "pixels"_a, "normalize"_a = false,
           "Embeddings of already preprocessed pixels, float32 (N, 3, image_size, image_size) (what "
           "CLIPProcessor gives as pixel_values).")
      .def("tokenize", &PyEngine::tokenize, "texts"_a,
           "Token ids with the start and end tokens, truncated to the context length: a list for a str, a list "
           "of lists for a sequence.")
      .def("_cpp_seconds_per_call", &PyEngine::cpp_seconds_per_call, "inputs"_a, "kind"_a, "repeats"_a,
           "Benchmarks only: median seconds of the engine's own call on these inputs, without Python.")
      .def_prop_ro("projection_dim", &PyEngine::projection_dim)
      .def_prop_ro("device", &PyEngine::device)
      .def_prop_ro("precision", &PyEngine::precision)
      .def_prop_ro("backend", &PyEngine::backend)
      .def_prop_ro("model_dir", &PyEngine::model_dir)
      .def_prop_ro("has_text", &PyEngine::has_text)
      .def_prop_ro("has_vision", &PyEngine::has_vision)
      .def_prop_ro("image_size", &PyEngine::image_size)
      .def("__repr__", [](const PyEngine& e) {
        return "clipfind.Engine('" + e.model_dir().string() + "', device='" + e.device() + "', precision='" +
               e.precision() + "')";
      });

  nb::class_<PyIndex>(m, "Index")
      .def(nb::init<const fs::path&, std::shared_ptr<PyEngine>, const std::optional<fs::path>&, const std::string&,
                    const std::optional<std::string>&, int>(),
           "path"_a = "clipfind-index", "engine"_a = nb::none(), "model"_a = nb::none(), "device"_a = "auto",
           "precision"_a = nb::none(), "threads"_a = 0,
           "Opens an index for searching (it never writes; `clipfind index` may run meanwhile). Queries are "
           "embedded with `engine`, else with the model the index was built with (or `model`), loaded at the "
           "first query with device, precision and threads.")
      .def("search", &PyIndex::search, "text"_a = nb::none(), "image"_a = nb::none(), "embedding"_a = nb::none(),
           "k"_a = 10, "video"_a = nb::none(),
           "The k best moments for one query (text=, image= a file path, uint8 array or PIL image, or "
           "embedding=), best first, as `clipfind search --json` gives them: dicts with video, start, end, time "
           "(seconds) and score, and for a SigLIP index probability = sigmoid(exp(logit_scale) * score + logit_bias) "
           "of the segment's best frame. video: only videos whose path matches this glob.")
      .def("videos", &PyIndex::videos,
           "The indexed files: dicts with id, path, duration, fps, width, height, "
           "frames, status (and error).")
      .def_prop_ro("path", &PyIndex::path)
      .def_prop_ro("engine", &PyIndex::engine)
      .def("__repr__", [](const PyIndex& i) { return "clipfind.Index('" + i.path().string() + "')"; });

  m.def("cuda_usable", [] {
    std::string why;
    const bool ok = clip::cuda_usable(&why);
    return nb::make_tuple(ok, why);
  });
}
