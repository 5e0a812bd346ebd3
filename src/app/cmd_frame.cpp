// clipfind frame: the picture of a video at a time, as a JPEG (thumbnails).
#include <cstdio>
#include <memory>

#include "app/commands.h"
#include "video/decoder.h"
#include "video/time_format.h"
#include "video/write_jpeg.h"

namespace clipfind {

namespace {

struct FrameOptions {
  std::string video;
  std::string at = "0";
  std::string out;
};

int run_frame(const FrameOptions& o) {
  const auto t = parse_time(o.at);
  if (!t) throw std::runtime_error("--at " + o.at + ": expected [[hh:]mm:]ss[.fff], e.g. 00:01:02.5");
  double duration = 0.0;
  const video::Frame f = video::frame_at(o.video, *t, &duration);
  if (duration > 0.0 && *t >= duration) {
    std::fprintf(stderr, "clipfind: warning: --at %s is past the end of %s (%s long): writing its last frame, at %s\n",
                 o.at.c_str(), o.video.c_str(), format_hms(duration).c_str(), format_hms(f.time).c_str());
  }
  video::write_jpeg(f.image, o.out);
  std::printf("%s  %s  %dx%d\n", o.out.c_str(), format_hms(f.time).c_str(), f.image.width, f.image.height);
  return 0;
}

}  // namespace

Command add_frame_command(CLI::App& root) {
  auto o = std::make_shared<FrameOptions>();
  CLI::App* app = root.add_subcommand("frame", "Write the frame of a video shown at a time as a JPEG.");
  app->add_option("VIDEO", o->video, "video file")->required()->check(CLI::ExistingFile);
  app->add_option("--at", o->at, "time: [[hh:]mm:]ss[.fff]")->capture_default_str();
  app->add_option("-o,--output", o->out, "JPEG file to write")->required();
  app->footer("Example: clipfind frame street.mp4 --at 00:12:31.5 -o thumb.jpg");
  return {app, [o] { return run_frame(*o); }};
}

}  // namespace clipfind
