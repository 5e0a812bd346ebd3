// Turning decoded pictures upright: phones store portrait video as landscape
// pixels plus a display matrix, which players (and CLIP) must apply.
#pragma once
#include "clip/image/image.h"

namespace clipfind::video {

// Rotates clockwise by 0, 90, 180 or 270 degrees.
clip::Image rotate_clockwise(const clip::Image& in, int degrees);

// The clockwise rotation a display matrix (FFmpeg's int32[9]) asks for,
// rounded to a multiple of 90; 0 when matrix is null.
int clockwise_degrees(const int32_t* display_matrix);

}  // namespace clipfind::video
