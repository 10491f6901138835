// Which processes run CPython, and where its interpreter keeps what the
// BPF frame walk (bpf/python_frames.h) and the code-object reader need: a
// table of field offsets per CPython version, read off CPython's own
// headers (see layout.cpp). A version not in the table gets native frames.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "procinfo/proc_maps.h"

namespace memtop {

struct PythonLayout {
    int major = 0, minor = 0;
    // Where the running thread's PyThreadState pointer is, from _PyRuntime.
    uint32_t runtime_tstate_current = 0;
    // PyThreadState, _PyCFrame, _PyInterpreterFrame (the kernel's walk).
    uint16_t tstate_cframe = 0, tstate_thread_id = 0, cframe_current_frame = 0;
    uint16_t frame_code = 0, frame_previous = 0, frame_prev_instr = 0, frame_is_entry = 0, frame_owner = 0;
    uint32_t owner_skip = 0xff;  // owner of frames that run no Python code; 0xff: none
    // PyCodeObject (user space's reading).
    uint32_t code_filename = 0, code_name = 0, code_qualname = 0, code_linetable = 0, code_firstlineno = 0;
    uint32_t code_adaptive = 0;  // co_code_adaptive: instruction 0
    // PyObject, PyBytesObject, PyUnicodeObject (compact forms).
    uint32_t object_type = 8, var_size = 16, bytes_data = 32;
    uint32_t unicode_length = 16, unicode_state = 32, unicode_ascii_data = 48, unicode_compact_data = 72;
};

// The layout of CPython major.minor; null when memtop has none.
const PythonLayout* python_layout(int major, int minor);

// A CPython interpreter mapped in a process.
struct PythonTarget {
    std::string module;  // the file defining _PyRuntime (python3.11, libpython3.11.so.1.0)
    int major = 0, minor = 0;
    uint64_t runtime = 0;                  // _PyRuntime's address in the process
    const PythonLayout* layout = nullptr;  // null: a version memtop does not know
};

// Where _PyRuntime is in the file a mapping maps (`path`: where that file
// is opened from memtop), as a file offset; nullopt when the file defines
// none or cannot be read. memtop asks its confined worker
// (Tracer::file_symbols): the file's symbol tables are not parsed here.
using RuntimeOffset = std::function<std::optional<uint64_t>(const std::string& path, const Mapping& file)>;

// The CPython of a process, found by the module that exports _PyRuntime
// (the executable, or libpython for a shared build); its version from the
// file name (python3.11, libpython3.11.so). nullopt: no CPython there.
// root: the process's file system root ("/proc/PID/root"), where its files
// are opened.
std::optional<PythonTarget> find_python(const std::vector<Mapping>& maps, const std::string& root,
                                        const RuntimeOffset& runtime_offset);

// "3.11" from a file name such as "python3.11" or "libpython3.11.so.1.0".
std::optional<std::pair<int, int>> python_version_of(const std::string& file_name);

}  // namespace memtop
