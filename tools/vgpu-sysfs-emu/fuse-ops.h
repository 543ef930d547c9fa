/* fuse-ops.h: the FUSE operations that serve an emu (emu.h) tree. */
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse.h>
#include <fuse_lowlevel.h>

extern const struct fuse_operations emu_fuse_ops;
