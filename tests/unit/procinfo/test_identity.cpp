#include <catch2/catch.hpp>
#include <string>

#include "procinfo/identity.h"

using memtop::cgroup_from_proc_cgroup;
using memtop::container_id_from_cgroup;

namespace {

const std::string kId = "4f1ac6d8c2f3e1b0a9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6";
const std::string kId2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

}  // namespace

TEST_CASE("cgroup_from_proc_cgroup: cgroup v2", "[cgroup]") {
    CHECK(cgroup_from_proc_cgroup("0::/user.slice/user-1000.slice/session-3.scope\n") ==
          "/user.slice/user-1000.slice/session-3.scope");
    CHECK(cgroup_from_proc_cgroup("0::/\n") == "/");
    CHECK(cgroup_from_proc_cgroup("0::/system.slice/foo.service") == "/system.slice/foo.service");
    // A removed cgroup; a path with a colon in it.
    CHECK(cgroup_from_proc_cgroup("0::/system.slice/gone.scope (deleted)\n") == "/system.slice/gone.scope");
    CHECK(cgroup_from_proc_cgroup("0::/a:b/c\n") == "/a:b/c");
}

TEST_CASE("cgroup_from_proc_cgroup: cgroup v1", "[cgroup]") {
    const std::string v1 = "12:pids:/docker/" + kId +
                           "\n"
                           "11:hugetlb:/docker/" +
                           kId +
                           "\n"
                           "10:net_cls,net_prio:/docker/" +
                           kId +
                           "\n"
                           "9:perf_event:/docker/" +
                           kId +
                           "\n"
                           "8:cpuset:/docker/" +
                           kId +
                           "\n"
                           "7:memory:/docker/" +
                           kId +
                           "\n"
                           "6:cpu,cpuacct:/docker/" +
                           kId +
                           "\n"
                           "5:freezer:/docker/" +
                           kId +
                           "\n"
                           "4:blkio:/docker/" +
                           kId +
                           "\n"
                           "3:devices:/docker/" +
                           kId +
                           "\n"
                           "2:rdma:/\n"
                           "1:name=systemd:/docker/" +
                           kId + "\n";
    CHECK(cgroup_from_proc_cgroup(v1) == "/docker/" + kId);

    // The memory controller's path wins over the first line.
    CHECK(cgroup_from_proc_cgroup("4:pids:/user.slice/user-1000.slice/session-2.scope\n"
                                  "3:memory:/user.slice/user-1000.slice\n"
                                  "1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n") ==
          "/user.slice/user-1000.slice");
    // Memory in a combined hierarchy.
    CHECK(cgroup_from_proc_cgroup("3:cpu,memory,cpuacct:/mygroup\n2:pids:/\n") == "/mygroup");
    // No memory controller: the first line.
    CHECK(cgroup_from_proc_cgroup("5:cpu,cpuacct:/batch\n1:name=systemd:/init.scope\n") == "/batch");
}

TEST_CASE("cgroup_from_proc_cgroup: hybrid v1 + v2", "[cgroup]") {
    // systemd hybrid: memory is accounted in v1.
    CHECK(cgroup_from_proc_cgroup("9:name=systemd:/\n"
                                  "4:memory:/process_api/0b2e71a6fc31111de594c9b915710fb9\n"
                                  "1:cpu:/\n"
                                  "0::/\n") == "/process_api/0b2e71a6fc31111de594c9b915710fb9");
    CHECK(cgroup_from_proc_cgroup("12:memory:/system.slice/docker-" + kId +
                                  ".scope\n"
                                  "1:name=systemd:/system.slice/docker-" +
                                  kId +
                                  ".scope\n"
                                  "0::/system.slice/docker-" +
                                  kId + ".scope\n") == "/system.slice/docker-" + kId + ".scope");
    // The memory hierarchy says nothing: the v2 path.
    CHECK(cgroup_from_proc_cgroup("4:memory:/\n0::/user.slice/user-1000.slice/session-1.scope\n") ==
          "/user.slice/user-1000.slice/session-1.scope");
}

TEST_CASE("cgroup_from_proc_cgroup: nothing usable", "[cgroup]") {
    CHECK(cgroup_from_proc_cgroup("").empty());
    CHECK(cgroup_from_proc_cgroup("garbage\n").empty());
}

TEST_CASE("container_id_from_cgroup: docker", "[container]") {
    CHECK(container_id_from_cgroup("/docker/" + kId) == kId);                          // cgroupfs driver
    CHECK(container_id_from_cgroup("/system.slice/docker-" + kId + ".scope") == kId);  // systemd driver
    // Docker in Docker: the innermost.
    CHECK(container_id_from_cgroup("/docker/" + kId + "/docker/" + kId2) == kId2);
    // Seen from another cgroup namespace.
    CHECK(container_id_from_cgroup("/../../docker/" + kId) == kId);
}

TEST_CASE("container_id_from_cgroup: containerd / CRI / Kubernetes", "[container]") {
    CHECK(container_id_from_cgroup("/system.slice/containerd.service/"
                                   "kubepods-burstable-pod7f3c9a1e_2b4d_4c6e_9f0a_1b2c3d4e5f60.slice:cri-containerd:" +
                                   kId) == kId);
    CHECK(container_id_from_cgroup("/kubepods.slice/kubepods-burstable.slice/"
                                   "kubepods-burstable-pod7f3c9a1e_2b4d_4c6e_9f0a_1b2c3d4e5f60.slice/cri-containerd-" +
                                   kId + ".scope") == kId);
    CHECK(container_id_from_cgroup(
              "/kubepods.slice/kubepods-pod7f3c9a1e_2b4d_4c6e_9f0a_1b2c3d4e5f60.slice/cri-containerd-" + kId +
              ".scope") == kId);
    CHECK(container_id_from_cgroup("/kubepods/burstable/pod7f3c9a1e-2b4d-4c6e-9f0a-1b2c3d4e5f60/" + kId) == kId);
    CHECK(container_id_from_cgroup("/kubepods/besteffort/pod7f3c9a1e-2b4d-4c6e-9f0a-1b2c3d4e5f60/" + kId) == kId);
    CHECK(container_id_from_cgroup("/kubepods/pod7f3c9a1e-2b4d-4c6e-9f0a-1b2c3d4e5f60/" + kId) == kId);
    // Docker as the Kubernetes runtime; CRI-O.
    CHECK(container_id_from_cgroup(
              "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podabc.slice/docker-" + kId + ".scope") ==
          kId);
    CHECK(container_id_from_cgroup("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice/crio-" +
                                   kId + ".scope") == kId);
    CHECK(container_id_from_cgroup(
              "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice/crio-conmon-" + kId +
              ".scope") == std::nullopt);
    // The pod's own cgroup is no container.
    CHECK(container_id_from_cgroup("/kubepods/burstable/pod7f3c9a1e-2b4d-4c6e-9f0a-1b2c3d4e5f60") == std::nullopt);
    CHECK(container_id_from_cgroup("/kubepods.slice/kubepods-burstable.slice") == std::nullopt);
}

TEST_CASE("container_id_from_cgroup: podman / libpod", "[container]") {
    CHECK(container_id_from_cgroup("/machine.slice/libpod-" + kId + ".scope") == kId);
    CHECK(container_id_from_cgroup("/machine.slice/libpod-" + kId + ".scope/container") == kId);
    // Rootless, under the user's slice.
    CHECK(container_id_from_cgroup("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kId +
                                   ".scope") == kId);
    // cgroupfs manager.
    CHECK(container_id_from_cgroup("/libpod_parent/libpod-" + kId) == kId);
    // conmon, the monitor, is outside the container.
    CHECK(container_id_from_cgroup("/machine.slice/libpod-conmon-" + kId + ".scope") == std::nullopt);
    CHECK(container_id_from_cgroup("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-conmon-" + kId +
                                   ".scope") == std::nullopt);
}

TEST_CASE("container_id_from_cgroup: systemd-nspawn", "[container]") {
    CHECK(container_id_from_cgroup("/machine.slice/machine-debian12.scope") == "debian12");
    CHECK(container_id_from_cgroup("/machine.slice/machine-debian12.scope/payload") == "debian12");
    CHECK(container_id_from_cgroup("/machine.slice/machine-my\\x2dbox.scope/payload/system.slice/nginx.service") ==
          "my-box");
    CHECK(container_id_from_cgroup("/machine.slice") == std::nullopt);
}

TEST_CASE("container_id_from_cgroup: LXC", "[container]") {
    CHECK(container_id_from_cgroup("/lxc/web01") == "web01");
    CHECK(container_id_from_cgroup("/lxc/web01/system.slice/cron.service") == "web01");
    CHECK(container_id_from_cgroup("/lxc.payload.web01") == "web01");
    CHECK(container_id_from_cgroup("/lxc.payload.web01/system.slice/systemd-journald.service") == "web01");
    CHECK(container_id_from_cgroup("/lxc.payload/web01") == "web01");
    CHECK(container_id_from_cgroup("/lxc.monitor.web01") == std::nullopt);
    CHECK(container_id_from_cgroup("/lxc") == std::nullopt);
    // Docker inside an LXD container: the innermost.
    CHECK(container_id_from_cgroup("/lxc.payload.web01/system.slice/docker-" + kId + ".scope") == kId);
}

TEST_CASE("container_id_from_cgroup: hosts' own slices", "[container]") {
    CHECK(container_id_from_cgroup("/") == std::nullopt);
    CHECK(container_id_from_cgroup("") == std::nullopt);
    CHECK(container_id_from_cgroup("/user.slice/user-1000.slice/session-3.scope") == std::nullopt);
    CHECK(container_id_from_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/dbus.service") ==
          std::nullopt);
    CHECK(container_id_from_cgroup("/system.slice/foo.service") == std::nullopt);
    CHECK(container_id_from_cgroup("/system.slice/docker.service") == std::nullopt);
    CHECK(container_id_from_cgroup("/system.slice/containerd.service") == std::nullopt);
    CHECK(container_id_from_cgroup("/init.scope") == std::nullopt);
    // Not 64 lower-case hex digits.
    CHECK(container_id_from_cgroup("/process_api/0b2e71a6fc31111de594c9b915710fb9") == std::nullopt);
    CHECK(container_id_from_cgroup("/docker/" + kId.substr(1)) == std::nullopt);
    CHECK(container_id_from_cgroup("/system.slice/docker-" + kId.substr(0, 63) + "g.scope") == std::nullopt);
}
