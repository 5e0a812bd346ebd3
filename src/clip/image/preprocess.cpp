// Image preprocessing as openai/CLIP's torchvision pipeline does it on PIL
// images -- Resize(n) (short side, PIL bicubic), CenterCrop(n) (torchvision's
// rounding and zero padding), ToTensor (/255), Normalize(mean, std) -- and as
// transformers' image processors do on PIL images: the resize may instead go
// to exactly H x W ("size": {"height", "width"}, SigLIP, no crop after it)
// and use another of PIL's filters ("resample").
// The resize itself lives in image_resize.cpp; a center crop asks it for the
// kept window only.
#include "clip/image/preprocess.h"

#include <algorithm>
#include <exception>
#include <string>
#include <thread>

#include "clip/error.h"
#include "clip/image/image_resize.h"
#include "clip/image/preprocess_plan.h"

namespace clip {
namespace {

// Python's round((total - crop) / 2) for total >= crop: halves go to the even
// neighbour (banker's rounding), e.g. 1.5 -> 2 but 2.5 -> 2. torchvision's
// CenterCrop does int(round(...)); transformers' numpy center_crop floors
// instead, so the two disagree by a pixel when (total - crop) / 2 = odd + 0.5.
int crop_offset(int total, int crop) {
  const int diff = total - crop;
  const int half = diff / 2;
  if (diff % 2 == 0) return half;
  return half % 2 == 0 ? half : half + 1;
}

// One channel's 256 possible outputs. torchvision computes
// (float(v) / 255 - mean) / std in float32; doing the same per byte value
// reproduces it exactly and costs one table lookup per sample.
void make_table(const PreprocessConfig& cfg, int c, float* table) {
  for (int v = 0; v < 256; ++v) {
    float x = static_cast<float>(v);
    if (cfg.do_rescale) {
      // The config holds 1/255 rounded to float; dividing by 255 like ToTensor
      // is the correctly rounded value, multiplying could be 1 ulp off.
      x = cfg.rescale_factor == 1.0f / 255.0f ? x / 255.0f : x * cfg.rescale_factor;
    }
    if (cfg.do_normalize) x = (x - cfg.mean[c]) / cfg.std[c];
    table[v] = x;
  }
}

void check_config(const PreprocessConfig& cfg) {
  const bool exact = cfg.resize_height > 0 || cfg.resize_width > 0;
  if ((cfg.do_resize && !exact && cfg.shortest_edge <= 0) ||
      (cfg.do_resize && exact && (cfg.resize_height <= 0 || cfg.resize_width <= 0)) || cfg.crop_width <= 0 ||
      cfg.crop_height <= 0) {
    throw Error("preprocess: invalid sizes (shortest_edge " + std::to_string(cfg.shortest_edge) + ", resize " +
                std::to_string(cfg.resize_width) + "x" + std::to_string(cfg.resize_height) + ", crop " +
                std::to_string(cfg.crop_width) + "x" + std::to_string(cfg.crop_height) + ")");
  }
  const int filter = static_cast<int>(cfg.resample);
  if (filter < 0 || filter > 5) throw Error("preprocess: unknown resample filter " + std::to_string(filter));
  if (cfg.do_normalize) {
    for (float s : cfg.std) {
      if (!(s != 0.0f)) throw Error("preprocess: image_std contains zero or NaN");
    }
  }
}

}  // namespace

void short_side_size(int width, int height, int shortest_edge, int* out_w, int* out_h) {
  if (width <= 0 || height <= 0 || shortest_edge <= 0) {
    throw Error("short_side_size: invalid sizes " + std::to_string(width) + "x" + std::to_string(height) + " -> " +
                std::to_string(shortest_edge));
  }
  // torchvision / transformers: short, long = (w, h) if w <= h else (h, w);
  // new_long = int(size * long / short). Python's int / int is the correctly
  // rounded quotient, the same as this double division of exact integers.
  const bool w_short = width <= height;
  const int64_t shrt = w_short ? width : height;
  const int64_t lng = w_short ? height : width;
  const double long_side = static_cast<double>(shortest_edge * lng) / static_cast<double>(shrt);
  if (long_side >= 2147483647.0) {
    throw Error("short_side_size: a " + std::to_string(width) + "x" + std::to_string(height) +
                " image resized to a short side of " + std::to_string(shortest_edge) + " would be " +
                std::to_string(static_cast<long long>(long_side)) + " pixels long, too elongated to process");
  }
  const int new_long = static_cast<int>(long_side);
  *out_w = w_short ? shortest_edge : new_long;
  *out_h = w_short ? new_long : shortest_edge;
}

namespace {

// Where a center crop of `crop` starts along an axis of `size`; negative
// when the crop is larger: torchvision pads with (crop - size) // 2 zeros
// before (and the rest after), then crops at 0.
int crop_start(int size, int crop) { return crop <= size ? crop_offset(size, crop) : -((crop - size) / 2); }

// Copies `part` into a zeroed crop_w x crop_h canvas at (x, y).
Image place_on_canvas(const Image& part, int crop_w, int crop_h, int x, int y) {
  if (part.width == crop_w && part.height == crop_h) return part;
  Image out{crop_w, crop_h, std::vector<uint8_t>(static_cast<size_t>(crop_w) * crop_h * 3, 0)};
  for (int row = 0; row < part.height; ++row) {
    const uint8_t* from = &part.rgb[static_cast<size_t>(row) * part.width * 3];
    std::copy(from, from + static_cast<size_t>(part.width) * 3,
              &out.rgb[(static_cast<size_t>(y + row) * crop_w + x) * 3]);
  }
  return out;
}

// The center crop of an image resized to (w, h) with `filter` -- or not
// resized, when w, h are its size: the window of the resize inside the
// crop, and where it goes.
void plan_crop(int src_w, int src_h, int w, int h, Resample filter, int crop_w, int crop_h,
               detail::PreprocessPlan* plan) {
  const int x0 = crop_start(w, crop_w), y0 = crop_start(h, crop_h);
  // The part of the crop window inside the (resized) image.
  const int xs = std::max(x0, 0), ys = std::max(y0, 0);
  const int xe = std::min(x0 + crop_w, w), ye = std::min(y0 + crop_h, h);
  plan->resize = detail::plan_resize(src_w, src_h, w, h, xs, ys, xe - xs, ye - ys, filter);
  plan->crop_w = crop_w;
  plan->crop_h = crop_h;
  plan->place_x = xs - x0;
  plan->place_y = ys - y0;
}

}  // namespace

Image center_crop(const Image& src, int crop_width, int crop_height) {
  if (crop_width <= 0 || crop_height <= 0) {
    throw Error("center_crop: invalid crop size " + std::to_string(crop_width) + "x" + std::to_string(crop_height));
  }
  const ImageView view = checked_view(src, "center_crop");
  detail::PreprocessPlan plan;
  plan_crop(src.width, src.height, src.width, src.height, Resample::Bicubic, crop_width, crop_height, &plan);
  return place_on_canvas(detail::resize_with_plan(view, plan.resize), crop_width, crop_height, plan.place_x,
                         plan.place_y);
}

namespace detail {

PreprocessPlan plan_preprocess(int width, int height, const PreprocessConfig& cfg) {
  check_config(cfg);
  if (width <= 0 || height <= 0) {
    throw Error("preprocess: not a valid RGB image (" + std::to_string(width) + "x" + std::to_string(height) + ")");
  }
  int w = width, h = height;
  if (cfg.do_resize && cfg.resize_height > 0) {  // exactly H x W, aspect ratio not kept
    w = cfg.resize_width;
    h = cfg.resize_height;
  } else if (cfg.do_resize) {
    short_side_size(width, height, cfg.shortest_edge, &w, &h);
  }
  PreprocessPlan plan;
  if (cfg.do_center_crop) {
    plan_crop(width, height, w, h, cfg.resample, cfg.crop_width, cfg.crop_height, &plan);
  } else if (w == cfg.crop_width && h == cfg.crop_height) {
    plan.resize = plan_resize(width, height, w, h, 0, 0, w, h, cfg.resample);
    plan.crop_w = w;
    plan.crop_h = h;
  } else {
    throw Error("preprocess: the image is " + std::to_string(w) + "x" + std::to_string(h) +
                (cfg.do_resize ? " after resizing" : "") + " but the model expects " + std::to_string(cfg.crop_width) +
                "x" + std::to_string(cfg.crop_height) + " (enable do_center_crop or resize the image first)");
  }
  for (int c = 0; c < 3; ++c) make_table(cfg, c, plan.table[c]);
  return plan;
}

}  // namespace detail

void preprocess_image(const ImageView& image, const PreprocessConfig& cfg, float* out) {
  const detail::PreprocessPlan plan = detail::plan_preprocess(image.width, image.height, cfg);
  const Image ready = place_on_canvas(detail::resize_with_plan(image, plan.resize), plan.crop_w, plan.crop_h,
                                      plan.place_x, plan.place_y);
  const size_t plane = static_cast<size_t>(ready.width) * ready.height;
  const uint8_t* px = ready.rgb.data();
  for (size_t i = 0; i < plane; ++i) {
    out[i] = plan.table[0][px[3 * i]];
    out[plane + i] = plan.table[1][px[3 * i + 1]];
    out[2 * plane + i] = plan.table[2][px[3 * i + 2]];
  }
}

void preprocess_image(const Image& image, const PreprocessConfig& cfg, float* out) {
  preprocess_image(checked_view(image, "preprocess"), cfg, out);
}

Tensor preprocess_batch(const std::vector<ImageView>& images, const PreprocessConfig& cfg) {
  check_config(cfg);
  const int64_t n = static_cast<int64_t>(images.size());
  Tensor out({n, 3, cfg.crop_height, cfg.crop_width});
  const size_t per_image = static_cast<size_t>(3) * cfg.crop_height * cfg.crop_width;
  // Images are independent: split them over a few threads. Each worker keeps
  // its first error; the first failing image (in order) is reported.
  const int64_t workers = std::min<int64_t>(n, std::max(1u, std::min(std::thread::hardware_concurrency(), 16u)));
  std::vector<std::exception_ptr> errors(images.size());
  auto run = [&](int64_t w) {
    for (int64_t i = w; i < n; i += workers) {
      try {
        preprocess_image(images[i], cfg, out.ptr() + i * per_image);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  if (workers <= 1) {
    run(0);
  } else {
    std::vector<std::thread> pool;
    for (int64_t w = 0; w < workers; ++w) pool.emplace_back(run, w);
    for (auto& t : pool) t.join();
  }
  for (size_t i = 0; i < errors.size(); ++i) {
    if (!errors[i]) continue;
    try {
      std::rethrow_exception(errors[i]);
    } catch (const Error& e) {
      throw Error("image " + std::to_string(i) + " of the batch: " + e.what());
    }
  }
  return out;
}

Tensor preprocess_batch(const std::vector<Image>& images, const PreprocessConfig& cfg) {
  return preprocess_batch(checked_views(images, "preprocess: image"), cfg);
}

}  // namespace clip
