// Moved to video/time_format.h (issue 25); this forwards for the commands
// that still include it here (cmd_search.cpp, cmd_frame.cpp) until they
// include the new path, then goes.
#pragma once
#include "video/time_format.h"
