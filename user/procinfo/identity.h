// Which cgroup and container a process belongs to, and its pid as seen
// inside its own pid namespace.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace memtop {

struct ProcessIdentity {
    std::string cgroup;                    // see cgroup_from_proc_cgroup; empty if unknown
    std::optional<std::string> container;  // see container_id_from_cgroup
    int nspid = 0;                         // pid in its innermost pid namespace; 0 if unknown
};

// The cgroup path of a process from the text of /proc/PID/cgroup. Pure.
// Lines are "HIERARCHY-ID:CONTROLLERS:PATH" (PATH may contain ':').
//  - cgroup v2 only ("0::/path"): that path;
//  - cgroup v1 only: the path of the hierarchy with the "memory" controller,
//    else the path of the first line;
//  - hybrid (v1 lines and "0::"): the memory controller's path (memory is
//    accounted there), unless it is "/" and the v2 path is not.
// A trailing " (deleted)" (a removed v2 cgroup) is dropped. Empty if the
// text has no line of that form.
std::string cgroup_from_proc_cgroup(std::string_view text);

// The container a cgroup path belongs to, or nullopt. Pure. The path's
// components are searched from the innermost out; the first that matches
// gives the answer:
//  - "<64 hex>" alone (Docker "/docker/<id>", Kubernetes cgroupfs
//    "/kubepods/<qos>/pod<uid>/<id>", ...) -> the id;
//  - "docker-<64hex>.scope", "cri-containerd-<64hex>.scope",
//    "crio-<64hex>.scope", "libpod-<64hex>.scope" (also without ".scope")
//    -> the id; "libpod-conmon-..." and "crio-conmon-..." are the monitors,
//    outside the container, and do not match;
//  - "<slice>:cri-containerd:<64hex>" (containerd, systemd driver, v1) -> the id;
//  - "machine-<name>.scope" (systemd-nspawn and other machined machines)
//    -> name, with systemd's "\xNN" escapes decoded;
//  - "lxc.payload.<name>", or <name> right after "lxc" or "lxc.payload"
//    -> name.
// So "/", "/user.slice/...", "/system.slice/foo.service", "/init.scope"
// have none. Hex ids are returned as written (lower case).
std::optional<std::string> container_id_from_cgroup(std::string_view cgroup_path);

// Reads /proc/PID/cgroup and /proc/PID/status (NSpid). What cannot be read
// stays empty / 0 (e.g. all of it for a process that has exited).
ProcessIdentity read_identity(int pid);

}  // namespace memtop
