// 4:2:0 chroma brought to full resolution the way the GPU path does it
// (clip/cuda/nv12_to_rgb.cuh): bilinear between the samples at their sited
// positions. swscale cannot do this at full size: it moves the vertical
// chroma position by whole rows only (tests/test_gpu_decode.cpp), which left
// CPU- and GPU-decoded frames several levels apart on sharp colour edges.
#pragma once
extern "C" {
#include <libavutil/frame.h>
}

namespace clipfind::video::detail {

// Where 4:2:0 chroma samples sit between the luma samples: centred_x, they
// lie between two columns, else on the even ones; centred_y likewise.
struct ChromaSiting {
  bool centred_x = false;
  bool centred_y = true;
};

// The siting a frame declares; unspecified is H.264/HEVC's default, "left".
ChromaSiting chroma_siting(const AVFrame* f);

// Whether upsample_420 takes frames of this format: 4:2:0 YUV with 8-16 bit
// integer samples in native byte order (planar or with interleaved chroma,
// yuv420p, yuvj420p, nv12, p010le, yuv420p10le ...).
bool upsamples_420(int av_pixel_format);

// f (a format upsamples_420 takes) as AV_PIX_FMT_YUV444P16 in *out
// (reallocated when its size differs), in limited range whatever
// full_range says f is in: convert *out as limited range.
void upsample_420(const AVFrame* f, ChromaSiting siting, bool full_range, AVFrame* out);

}  // namespace clipfind::video::detail
