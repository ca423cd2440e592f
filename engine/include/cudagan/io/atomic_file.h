// Atomic file output, shared by every writer of the engine (PNG, GIF, safetensors): the bytes go
// to a temporary file beside the target, are flushed to disk, and only then renamed over it. A
// crash, a full disk or a throwing writer therefore never leaves a half-written output behind:
// readers see either the old file or the complete new one.
#pragma once

#include <cstdio>
#include <functional>
#include <string>

namespace cudagan::detail {

// Calls `writer` with a FILE* opened on `path + ".tmp.<pid>"`, then flushes, fsyncs and renames
// the temporary over `path`. On any failure (open, a write error seen by ferror, fsync, rename, or
// an exception from `writer`) the temporary is removed and cudagan::Error is thrown naming the
// path and the OS error: "cannot write 'out/x.png': No such file or directory". An exception
// thrown by `writer` itself is rethrown unchanged after the clean-up.
void write_file_atomically(const std::string& path, const std::function<void(FILE*)>& writer);

// The same, for output that already sits in memory.
void write_file_atomically(const std::string& path, const void* data, size_t bytes);

}  // namespace cudagan::detail
