// tests/test_topology.cpp: placement plans on synthetic machines, cpu-list and
// environment parsing, and binding threads and memory on this host.
#include <doctest/doctest.h>

#include <forkline/errors.hpp>    // config_error, system_failure
#include <forkline/topology.hpp>  // topology, placement_config, parse_cpu_list, with_environment

#include "binding.hpp"  // bind_current_thread, allocate_on_node, free_on_node

#include <numaif.h>  // get_mempolicy, MPOL_F_NODE, MPOL_F_ADDR
#include <sched.h>   // sched_getaffinity, sched_getcpu
#include <sys/stat.h>  // mkdir
#include <sys/wait.h>  // waitpid
#include <unistd.h>  // sysconf(_SC_PAGESIZE), fork, getpid, geteuid, rmdir

#include <cerrno>     // errno, ENOSYS, EPERM
#include <cstdint>    // uintptr_t
#include <cstdlib>    // mkdtemp, _Exit
#include <filesystem>  // create_directories, remove_all, exists
#include <fstream>    // ofstream
#include <map>        // map (fake environment)
#include <set>        // set (distinct cores, nodes)
#include <string>     // string
#include <thread>     // thread
#include <vector>     // vector

using namespace forkline;

namespace {

constexpr const char* k_two_socket = "pack:2 numa:2 l3:2 core:4 pu:2";

// The message of the config_error that `fn` throws; fails the test if it throws none.
template <typename Fn>
std::string config_error_message(Fn&& fn) {
    try {
        fn();
    } catch (const config_error& e) {
        return e.what();
    }
    FAIL("expected a config_error");
    return {};
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::vector<unsigned> cpus_of(const placement_plan& plan) {
    std::vector<unsigned> cpus;
    for (const worker_place& p : plan.places) cpus.push_back(p.pu_os_index);
    return cpus;
}

placement_config config_with(placement_policy policy, bool use_smt = false, unsigned workers = 0) {
    placement_config config;
    config.policy = policy;
    config.use_smt = use_smt;
    config.workers = workers;
    return config;
}

}  // namespace

TEST_CASE("parse_cpu_list keeps order and expands ranges") {
    CHECK(parse_cpu_list("0-3,8-11,14") == std::vector<unsigned>{0, 1, 2, 3, 8, 9, 10, 11, 14});
    CHECK(parse_cpu_list("5,1,3") == std::vector<unsigned>{5, 1, 3});
    CHECK(parse_cpu_list(" 2 , 0-1 ") == std::vector<unsigned>{2, 0, 1});
    CHECK(parse_cpu_list("7-7") == std::vector<unsigned>{7});
    CHECK(parse_cpu_list("65535") == std::vector<unsigned>{65535});
}

TEST_CASE("parse_cpu_list rejects malformed lists, quoting them") {
    for (const char* bad : {"", " ", "3-1", "a", "1,,2", "1,1", "0-2,1", "99999", "65536", "-1", "1-", "1-2-3",
                            "4x", ","}) {
        CAPTURE(bad);
        const std::string message = config_error_message([&] { parse_cpu_list(bad); });
        CHECK(contains(message, "'" + std::string(bad) + "'"));
    }
}

TEST_CASE("synthetic two-socket machine: summary counts every level") {
    const topology topo = topology::synthetic(k_two_socket);
    const topology_summary s = topo.summary();
    CHECK(s.packages == 2);
    CHECK(s.numa_nodes == 4);
    CHECK(s.l3_groups == 8);
    CHECK(s.cores == 32);
    CHECK(s.pus == 64);
    CHECK(topo.native_handle() != nullptr);
}

TEST_CASE("compact plan: one worker per core, in core order") {
    const topology topo = topology::synthetic(k_two_socket);
    const placement_plan plan = topo.plan({});
    REQUIRE(plan.worker_count() == 32);
    REQUIRE(plan.distances.size() == 32u * 32u);
    for (unsigned i = 0; i < 32; ++i) {
        CAPTURE(i);
        const worker_place& p = plan.places[i];
        CHECK(p.pu_os_index == 2 * i);  // first PU of core i
        CHECK(p.core_index == i);
        CHECK(p.l3_index == i / 4);
        CHECK(p.numa_index == i / 8);
        CHECK(p.numa_os_index == static_cast<int>(i / 8));
        CHECK(p.package_index == i / 16);
    }
    CHECK(plan.distance(0, 0) == distance_class::same_core);
    CHECK(plan.distance(0, 1) == distance_class::same_l3);
    CHECK(plan.distance(0, 4) == distance_class::same_numa);
    CHECK(plan.distance(0, 8) == distance_class::same_package);
    CHECK(plan.distance(0, 16) == distance_class::remote);
    CHECK(plan.distance(31, 24) == distance_class::same_numa);
    for (unsigned a = 0; a < 32; ++a)
        for (unsigned b = 0; b < 32; ++b) CHECK(plan.distance(a, b) == plan.distance(b, a));

    const placement_plan five = topo.plan(config_with(placement_policy::compact, false, 5));
    CHECK(cpus_of(five) == std::vector<unsigned>{0, 2, 4, 6, 8});
}

TEST_CASE("compact+smt plan: siblings come after every core has a worker") {
    const topology topo = topology::synthetic(k_two_socket);
    const placement_plan plan = topo.plan(config_with(placement_policy::compact, true));
    REQUIRE(plan.worker_count() == 64);
    for (unsigned i = 0; i < 32; ++i) {
        CAPTURE(i);
        CHECK(plan.places[i].pu_os_index == 2 * i);
        CHECK(plan.places[32 + i].pu_os_index == 2 * i + 1);
        CHECK(plan.places[32 + i].core_index == i);
        CHECK(plan.distance(i, 32 + i) == distance_class::same_core);
    }
    CHECK(plan.distance(32, 1) == distance_class::same_l3);
    CHECK(plan.distance(32, 63) == distance_class::remote);

    const placement_plan forty = topo.plan(config_with(placement_policy::compact, true, 40));
    REQUIRE(forty.worker_count() == 40);
    CHECK(forty.places[32].pu_os_index == 1);
    CHECK(forty.places[39].pu_os_index == 15);
}

TEST_CASE("scatter plan: round-robin over NUMA nodes") {
    const topology topo = topology::synthetic(k_two_socket);
    const placement_plan plan = topo.plan(config_with(placement_policy::scatter));
    REQUIRE(plan.worker_count() == 32);
    std::set<unsigned> cores;
    for (unsigned i = 0; i < 32; ++i) {
        CAPTURE(i);
        const worker_place& p = plan.places[i];
        CHECK(p.numa_index == i % 4);
        CHECK(p.core_index == (i % 4) * 8 + i / 4);
        cores.insert(p.core_index);
    }
    CHECK(cores.size() == 32);
    CHECK(plan.distance(0, 1) == distance_class::same_package);
    CHECK(plan.distance(0, 2) == distance_class::remote);
    CHECK(plan.distance(0, 4) == distance_class::same_l3);

    const placement_plan smt = topo.plan(config_with(placement_policy::scatter, true, 36));
    REQUIRE(smt.worker_count() == 36);
    for (unsigned i = 0; i < 4; ++i) {
        CAPTURE(i);
        CHECK(smt.places[32 + i].pu_os_index == smt.places[i].pu_os_index + 1);
        CHECK(smt.distance(i, 32 + i) == distance_class::same_core);
    }
}

TEST_CASE("scatter skips NUMA nodes that run out of cores") {
    // Node 0 keeps 3 cores (cpus 0-5), node 1 one core (cpus 16-17).
    const topology topo = topology::synthetic(k_two_socket, "0-5,16-17");
    const placement_plan plan = topo.plan(config_with(placement_policy::scatter));
    CHECK(cpus_of(plan) == std::vector<unsigned>{0, 16, 2, 4});
    CHECK(plan.places[1].numa_os_index == 1);
}

TEST_CASE("machines without L3: the NUMA node is the L3 group") {
    const topology flat = topology::synthetic("core:2 pu:1");
    const topology_summary s = flat.summary();
    CHECK(s.packages == 0);
    CHECK(s.numa_nodes == 1);
    CHECK(s.l3_groups == 0);
    CHECK(s.cores == 2);
    CHECK(s.pus == 2);
    const placement_plan plan = flat.plan({});
    REQUIRE(plan.worker_count() == 2);
    CHECK(plan.places[1].l3_index == plan.places[1].numa_index);
    CHECK(plan.distance(0, 1) == distance_class::same_l3);

    const topology smt = topology::synthetic("pack:1 core:4 pu:2");
    const placement_plan all = smt.plan(config_with(placement_policy::compact, true));
    CHECK(cpus_of(all) == std::vector<unsigned>{0, 2, 4, 6, 1, 3, 5, 7});
    CHECK(all.distance(0, 4) == distance_class::same_core);
    CHECK(all.distance(0, 1) == distance_class::same_l3);
}

TEST_CASE("restricted synthetic machine: only allowed PUs are planned") {
    const topology topo = topology::synthetic(k_two_socket, "0-5");
    const topology_summary s = topo.summary();
    CHECK(s.packages == 1);
    CHECK(s.numa_nodes == 1);
    CHECK(s.l3_groups == 1);
    CHECK(s.cores == 3);
    CHECK(s.pus == 6);
    CHECK(cpus_of(topo.plan({})) == std::vector<unsigned>{0, 2, 4});
    CHECK(cpus_of(topo.plan(config_with(placement_policy::compact, true))) ==
          std::vector<unsigned>{0, 2, 4, 1, 3, 5});

    placement_config list = config_with(placement_policy::list);
    list.cpu_list = "5,1";
    CHECK(cpus_of(topo.plan(list)) == std::vector<unsigned>{5, 1});
    list.cpu_list = "1,6";
    const std::string message = config_error_message([&] { topo.plan(list); });
    CHECK(contains(message, "cpu 6"));
    CHECK(contains(message, "0-5"));

    // The first *allowed* PU of each core, even when it is not the core's first.
    const topology odd = topology::synthetic(k_two_socket, "1,3-4");
    CHECK(cpus_of(odd.plan({})) == std::vector<unsigned>{1, 3, 4});
}

TEST_CASE("synthetic: bad descriptions and allowed sets are config_error") {
    CHECK(contains(config_error_message([] { topology::synthetic("bogus:3"); }), "'bogus:3'"));
    CHECK(contains(config_error_message([] { topology::synthetic("core:2 pu:1", "0-2"); }), "cpu 2"));
    CHECK(contains(config_error_message([] { topology::synthetic("core:2 pu:1", "1-0"); }), "'1-0'"));
}

TEST_CASE("oversubscribe repeats places; without it, too many workers is an error") {
    const topology topo = topology::synthetic("core:2 pu:1");
    placement_config config = config_with(placement_policy::compact, false, 8);
    const std::string message = config_error_message([&] { topo.plan(config); });
    CHECK(contains(message, "workers=8"));
    CHECK(contains(message, "oversubscribe"));

    config.oversubscribe = true;
    const placement_plan plan = topo.plan(config);
    CHECK(cpus_of(plan) == std::vector<unsigned>{0, 1, 0, 1, 0, 1, 0, 1});
    CHECK(plan.distance(0, 2) == distance_class::same_core);
    CHECK(plan.distance(0, 3) == distance_class::same_l3);
}

TEST_CASE("a worker count past the runtime's limit is a config_error, even oversubscribed") {
    const topology topo = topology::synthetic("core:2 pu:1");
    for (const unsigned workers : {k_max_workers + 1, 1u << 31, ~0u}) {
        placement_config config = config_with(placement_policy::compact, false, workers);
        config.oversubscribe = true;
        const std::string message = config_error_message([&] { topo.plan(config); });
        CHECK(contains(message, "workers=" + std::to_string(workers)));
        CHECK(contains(message, std::to_string(k_max_workers)));
    }
    placement_config at_limit = config_with(placement_policy::compact, false, k_max_workers);
    at_limit.oversubscribe = true;
    CHECK(topo.plan(at_limit).places.size() == k_max_workers);
}

TEST_CASE("list policy keeps the given order and validates the list") {
    const topology topo = topology::synthetic("pack:1 core:4 pu:2");
    placement_config config = config_with(placement_policy::list);
    config.cpu_list = "6,0,3";
    const placement_plan plan = topo.plan(config);
    CHECK(cpus_of(plan) == std::vector<unsigned>{6, 0, 3});
    CHECK(plan.places[2].core_index == 1);
    CHECK(plan.distance(1, 2) == distance_class::same_l3);

    config.workers = 2;
    CHECK(cpus_of(topo.plan(config)) == std::vector<unsigned>{6, 0});

    for (const char* bad : {"", "3-1", "a", "1,,2", "1,1", "99999"}) {
        CAPTURE(bad);
        config.cpu_list = bad;
        CHECK(contains(config_error_message([&] { topo.plan(config); }), "'" + std::string(bad) + "'"));
    }
    config.cpu_list = "8";  // exists nowhere in this machine
    CHECK(contains(config_error_message([&] { topo.plan(config); }), "0-7"));
}

TEST_CASE("describe: one line per worker") {
    const topology topo = topology::synthetic("pack:1 core:4 pu:2");
    const std::string text = topo.plan({}).describe();
    CHECK(text ==
          "w0 -> cpu 0 (core 0, l3 0, numa 0, pkg 0)\n"
          "w1 -> cpu 2 (core 1, l3 0, numa 0, pkg 0)\n"
          "w2 -> cpu 4 (core 2, l3 0, numa 0, pkg 0)\n"
          "w3 -> cpu 6 (core 3, l3 0, numa 0, pkg 0)\n");
}

TEST_CASE("with_environment applies FORKLINE_WORKERS and FORKLINE_PLACES") {
    std::map<std::string, std::string> env;
    const auto fake_getenv = [&](const char* name) -> const char* {
        const auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
    };
    placement_config base;
    base.workers = 3;
    base.use_smt = true;

    SUBCASE("unset variables change nothing") {
        const placement_config out = with_environment(base, fake_getenv);
        CHECK(out.workers == 3);
        CHECK(out.policy == placement_policy::compact);
        CHECK(out.use_smt);
        CHECK(out.cpu_list.empty());
    }
    SUBCASE("good values") {
        env["FORKLINE_WORKERS"] = "12";
        env["FORKLINE_PLACES"] = "scatter";
        placement_config out = with_environment(base, fake_getenv);
        CHECK(out.workers == 12);
        CHECK(out.policy == placement_policy::scatter);
        CHECK_FALSE(out.use_smt);

        env["FORKLINE_PLACES"] = "compact+smt";
        out = with_environment(placement_config{}, fake_getenv);
        CHECK(out.policy == placement_policy::compact);
        CHECK(out.use_smt);

        env["FORKLINE_PLACES"] = "scatter+smt";
        out = with_environment(placement_config{}, fake_getenv);
        CHECK(out.policy == placement_policy::scatter);
        CHECK(out.use_smt);

        env["FORKLINE_PLACES"] = "0-3,8";
        out = with_environment(placement_config{}, fake_getenv);
        CHECK(out.policy == placement_policy::list);
        CHECK(out.cpu_list == "0-3,8");
    }
    SUBCASE("bad FORKLINE_WORKERS names the variable and the value") {
        for (const char* bad : {"0", "-1", "abc", "4x", "", " 4", "99999999999"}) {
            CAPTURE(bad);
            env["FORKLINE_WORKERS"] = bad;
            const std::string message = config_error_message([&] { with_environment(base, fake_getenv); });
            CHECK(contains(message, "FORKLINE_WORKERS='" + std::string(bad) + "'"));
            CHECK(contains(message, "positive integer"));
        }
    }
    SUBCASE("bad FORKLINE_PLACES lists the accepted forms") {
        for (const char* bad : {"bogus", "", "Compact", "compact+ht", "0-", "3-1"}) {
            CAPTURE(bad);
            env["FORKLINE_PLACES"] = bad;
            const std::string message = config_error_message([&] { with_environment(base, fake_getenv); });
            CHECK(contains(message, "FORKLINE_PLACES='" + std::string(bad) + "'"));
        }
        env["FORKLINE_PLACES"] = "bogus";
        const std::string message = config_error_message([&] { with_environment(base, fake_getenv); });
        CHECK(contains(message, "scatter+smt"));
        CHECK(contains(message, "cpu list"));
    }
}

namespace {

std::set<unsigned> process_affinity() {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    REQUIRE(sched_getaffinity(0, sizeof mask, &mask) == 0);
    std::set<unsigned> cpus;
    for (unsigned cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &mask)) cpus.insert(cpu);
    return cpus;
}

}  // namespace

TEST_CASE("discover: this host's plan stays inside the process affinity") {
    const topology topo = topology::discover();
    const std::set<unsigned> allowed = process_affinity();
    const topology_summary s = topo.summary();
    CHECK(s.pus > 0);
    CHECK(s.pus <= allowed.size());
    CHECK(s.cores > 0);
    CHECK(s.numa_nodes > 0);

    const placement_plan cores = topo.plan({});
    CHECK(cores.worker_count() == s.cores);
    const placement_plan all = topo.plan(config_with(placement_policy::compact, true));
    CHECK(all.worker_count() == s.pus);
    for (const unsigned cpu : cpus_of(all)) {
        CAPTURE(cpu);
        CHECK(allowed.count(cpu) == 1);
    }
    const placement_plan scatter = topo.plan(config_with(placement_policy::scatter, true));
    const std::vector<unsigned> compact_cpus = cpus_of(all);
    const std::vector<unsigned> scatter_cpus = cpus_of(scatter);
    CHECK(std::set<unsigned>(scatter_cpus.begin(), scatter_cpus.end()) ==
          std::set<unsigned>(compact_cpus.begin(), compact_cpus.end()));
    CHECK(scatter_cpus.size() == compact_cpus.size());
}

TEST_CASE("bind_current_thread pins a thread to each planned cpu") {
    const topology topo = topology::discover();
    for (const unsigned cpu : cpus_of(topo.plan(config_with(placement_policy::compact, true)))) {
        CAPTURE(cpu);
        int seen = -1;
        std::thread worker([&] {
            detail::bind_current_thread(topo, cpu);
            seen = sched_getcpu();
        });
        worker.join();
        CHECK(seen == static_cast<int>(cpu));
    }

    bool threw = false;
    std::string call;
    std::thread worker([&] {
        try {
            detail::bind_current_thread(topo, 65000);
        } catch (const system_failure& e) {
            threw = true;
            call = e.call();
        }
    });
    worker.join();
    CHECK(threw);
    CHECK(call == "hwloc_set_cpubind");

    // hwloc would report success on a synthetic machine without binding anything.
    const topology fake = topology::synthetic("core:2 pu:1");
    CHECK_THROWS_AS(detail::bind_current_thread(fake, 0), system_failure);
}

TEST_CASE("allocate_on_node: usable, page-aligned, zeroed memory on the node") {
    const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t bytes = 3 * page + 5;

    const topology host = topology::discover();
    std::set<int> nodes;
    for (const worker_place& p : host.plan({}).places) nodes.insert(p.numa_os_index);
    for (const int node : nodes) {
        CAPTURE(node);
        auto* bytes_p = static_cast<unsigned char*>(detail::allocate_on_node(host, bytes, node));
        REQUIRE(bytes_p != nullptr);
        CHECK(reinterpret_cast<std::uintptr_t>(bytes_p) % page == 0);
        bool zero = true;
        for (std::size_t i = 0; i < bytes; ++i) zero = zero && bytes_p[i] == 0;
        CHECK(zero);
        for (std::size_t i = 0; i < bytes; ++i) bytes_p[i] = static_cast<unsigned char>(i);
        CHECK(bytes_p[bytes - 1] == static_cast<unsigned char>(bytes - 1));

        int actual = -1;
        if (get_mempolicy(&actual, nullptr, 0, bytes_p, MPOL_F_NODE | MPOL_F_ADDR) == 0) {
            CHECK(actual == node);
        } else {
            const int err = errno;
            MESSAGE("get_mempolicy unavailable (errno " << err << "); node check skipped");
            CHECK((err == ENOSYS || err == EPERM));
        }
        detail::free_on_node(host, bytes_p, bytes);
    }

    // A synthetic machine cannot bind: the fallback must still be aligned and zeroed.
    const topology fake = topology::synthetic(k_two_socket);
    auto* p = static_cast<unsigned char*>(detail::allocate_on_node(fake, bytes, 1));
    REQUIRE(p != nullptr);
    CHECK(reinterpret_cast<std::uintptr_t>(p) % page == 0);
    bool zero = true;
    for (std::size_t i = 0; i < bytes; ++i) zero = zero && p[i] == 0;
    CHECK(zero);
    p[bytes - 1] = 7;
    detail::free_on_node(fake, p, bytes);
    detail::free_on_node(fake, nullptr, 0);
}

namespace {

// A fake cgroup tree: a /proc/self/cgroup file and a cgroupfs root, in a
// directory removed at the end.
struct fake_cgroups {
    fake_cgroups() {
        std::string pattern = "/tmp/forkline-cgroup-XXXXXX";
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        dir = pattern;
        root = dir + "/fs";
        proc = dir + "/proc-self-cgroup";
    }
    ~fake_cgroups() { std::filesystem::remove_all(dir); }
    void put(const std::string& relative, const std::string& text) const {
        const std::filesystem::path p = relative.rfind("/proc", 0) == 0 ? std::filesystem::path(proc)
                                                                        : std::filesystem::path(root + relative);
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p) << text;
    }
    placement_config config() const {
        placement_config c;
        c.proc_cgroup = proc;
        c.cgroup_root = root;
        return c;
    }
    std::string dir, root, proc;
};

}  // namespace

TEST_CASE("cgroup v2 cpu.max caps the default worker count at ceil(quota / period), the tightest ancestor winning") {
    const topology topo = topology::synthetic("core:8 pu:1");
    fake_cgroups fake;
    fake.put("/proc", "0::/app/worker\n");
    fake.put("/app/cpu.max", "max 100000\n");
    fake.put("/app/worker/cpu.max", "150000 100000\n");
    placement_plan plan = topo.plan(fake.config());
    CHECK(plan.worker_count() == 2);
    CHECK(contains(plan.worker_count_reason, "cgroup v2 cpu.max '150000 100000'"));
    CHECK(contains(plan.worker_count_reason, "/app/worker"));
    // A parent's limit applies to its children too.
    fake.put("/app/cpu.max", "100000 100000\n");
    plan = topo.plan(fake.config());
    CHECK(plan.worker_count() == 1);
    CHECK(contains(plan.worker_count_reason, "'100000 100000'"));
    // Half a cpu still gets one worker; "max" everywhere: every core.
    fake.put("/app/cpu.max", "50000 100000\n");
    CHECK(topo.plan(fake.config()).worker_count() == 1);
    fake.put("/app/cpu.max", "max 100000\n");
    fake.put("/app/worker/cpu.max", "max 100000\n");
    plan = topo.plan(fake.config());
    CHECK(plan.worker_count() == 8);
    CHECK(contains(plan.worker_count_reason, "8 places"));
    // A quota above the cores: the cores decide.
    fake.put("/app/worker/cpu.max", "2000000 100000\n");
    CHECK(topo.plan(fake.config()).worker_count() == 8);
}

TEST_CASE("cgroup v1 cfs quota caps it too; a container's own mount; -1 is no limit") {
    const topology topo = topology::synthetic("core:8 pu:1");
    fake_cgroups fake;
    fake.put("/proc", "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n");
    fake.put("/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "250000\n");
    fake.put("/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    placement_plan plan = topo.plan(fake.config());
    CHECK(plan.worker_count() == 3);
    CHECK(contains(plan.worker_count_reason, "cgroup v1 cpu.cfs_quota_us 250000"));
    fake.put("/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
    CHECK(topo.plan(fake.config()).worker_count() == 8);
    // Without a cgroup namespace the host's path is listed, but the mount
    // holds only the container's cgroup: its files are at the mount's top.
    fake_cgroups inside;
    inside.put("/proc", "4:cpu,cpuacct:/docker/0123\n");
    inside.put("/cpu,cpuacct/cpu.cfs_quota_us", "400000\n");
    inside.put("/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    CHECK(topo.plan(inside.config()).worker_count() == 4);
}

TEST_CASE("cgroup limits: explicit counts, opting out, and unreadable or malformed files") {
    const topology topo = topology::synthetic("core:8 pu:1");
    fake_cgroups fake;
    fake.put("/proc", "0::/app\n");
    fake.put("/app/cpu.max", "100000 100000\n");
    placement_config asked = fake.config();
    asked.workers = 6;
    placement_plan plan = topo.plan(asked);
    CHECK(plan.worker_count() == 6);  // asked for: taken as asked
    CHECK(plan.worker_count_reason == "asked for 6");
    placement_config ignore = fake.config();
    ignore.respect_cpu_quota = false;
    CHECK(topo.plan(ignore).worker_count() == 8);
    for (const char* bad : {"", "garbage", "100000", "-5 100000", "100000 0", "1e5 100000", "max"}) {
        CAPTURE(bad);
        fake.put("/app/cpu.max", std::string(bad) + "\n");
        CHECK(topo.plan(fake.config()).worker_count() == 8);  // a limit that cannot be read is not applied
    }
    placement_config missing;
    missing.proc_cgroup = fake.dir + "/no-such-file";
    missing.cgroup_root = fake.root;
    CHECK(topo.plan(missing).worker_count() == 8);
    // A synthetic machine is not this host: the host's own cgroup is not read.
    CHECK(topo.plan(placement_config{}).worker_count() == 8);
}

TEST_CASE("cgroup v1 for real: a child in a cgroup with a one-cpu quota plans one worker (root only)") {
    const std::string mount = "/sys/fs/cgroup/cpu";
    const std::string group = mount + "/forkline-test-" + std::to_string(::getpid());
    if (::geteuid() != 0 || !std::filesystem::exists(mount + "/cpu.cfs_quota_us") || ::mkdir(group.c_str(), 0755) != 0) {
        MESSAGE("skipped: needs root and a writable cgroup v1 cpu controller at " << mount);
        return;
    }
    bool written = false;
    {
        std::ofstream period(group + "/cpu.cfs_period_us");
        std::ofstream quota(group + "/cpu.cfs_quota_us");
        written = static_cast<bool>(period << "100000\n" << std::flush) &&
                  static_cast<bool>(quota << "100000\n" << std::flush);
    }
    if (!written) {
        ::rmdir(group.c_str());
        MESSAGE("skipped: cannot set a quota on " << group);
        return;
    }
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // Into the cgroup (77: refused, a skip), then plan on the real
        // machine with the real paths.
        {
            std::ofstream procs(group + "/cgroup.procs");
            if (!(procs << ::getpid() << "\n" << std::flush)) std::_Exit(77);
        }
        const placement_plan plan = topology::discover().plan(placement_config{});
        std::_Exit(plan.worker_count() == 1 && contains(plan.worker_count_reason, "cfs_quota_us 100000") ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    ::rmdir(group.c_str());
    REQUIRE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        MESSAGE("skipped: the cgroup refused a process");
        return;
    }
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("cgroup v2 for real: a child in a cgroup with cpu.max of one cpu plans one worker (root only)") {
    const std::string root = "/sys/fs/cgroup";
    const std::string group = root + "/forkline-test-" + std::to_string(::getpid());
    if (::geteuid() != 0 || !std::filesystem::exists(root + "/cgroup.controllers")) {
        MESSAGE("skipped: needs root and cgroup v2 mounted at " << root);
        return;
    }
    { std::ofstream(root + "/cgroup.subtree_control") << "+cpu\n"; }  // may be refused; then cpu.max is missing
    if (::mkdir(group.c_str(), 0755) != 0) {
        MESSAGE("skipped: cannot make a cgroup under " << root);
        return;
    }
    bool written = false;
    {
        std::ofstream limit(group + "/cpu.max");
        written = static_cast<bool>(limit << "100000 100000\n" << std::flush);
    }
    if (!written || !std::filesystem::exists(group + "/cpu.max")) {
        ::rmdir(group.c_str());
        MESSAGE("skipped: the cpu controller is not enabled for " << group);
        return;
    }
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        {
            std::ofstream procs(group + "/cgroup.procs");
            if (!(procs << ::getpid() << "\n" << std::flush)) std::_Exit(77);
        }
        const placement_plan plan = topology::discover().plan(placement_config{});
        std::_Exit(plan.worker_count() == 1 && contains(plan.worker_count_reason, "cpu.max '100000 100000'") ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    ::rmdir(group.c_str());
    REQUIRE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        MESSAGE("skipped: the cgroup refused a process");
        return;
    }
    CHECK(WEXITSTATUS(status) == 0);
}
