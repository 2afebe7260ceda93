// examples/serve_stream.cpp: serving a stream of requests under load with
// forkline::stream_executor: three priority classes, shedding at depth
// thresholds, deadlines, and every request accounted for at the end.
#include <chrono>   // steady_clock, microseconds
#include <cstdio>   // printf
#include <thread>   // this_thread::sleep_for

#include <forkline/forkline.hpp>  // runtime, stream_executor

int main() {
    forkline::runtime rt;
    forkline::stream_config config;
    config.capacity = 64;                                // requests queued, all classes
    config.admission = forkline::admission_policy::shed;  // class 2 refused above 60%, class 1 above 80%
    forkline::stream_executor server(rt, config);

    int refused = 0;
    for (int i = 0; i < 2000; ++i) {
        forkline::request_options o;
        o.priority = static_cast<unsigned>(i % 3);  // 0 is the highest class
        o.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
        const auto status = server.post([] { std::this_thread::sleep_for(std::chrono::microseconds(50)); }, o);
        if (status != forkline::post_status::accepted) ++refused;  // a caller would back off and retry
    }
    server.drain();

    const forkline::stream_stats s = server.stats();
    const forkline::stream_counters& c = s.counters;
    std::printf("arrived=%llu done=%llu rejected=%llu expired=%llu (refused at post: %d)\n",
                static_cast<unsigned long long>(c.arrived), static_cast<unsigned long long>(c.done),
                static_cast<unsigned long long>(c.rejected), static_cast<unsigned long long>(c.expired), refused);
    std::printf("class 0: p50 %.0f us, p99 %.0f us\n", static_cast<double>(s.latency[0].p50) / 1e3,
                static_cast<double>(s.latency[0].p99) / 1e3);
    const bool conserved = c.arrived == c.done + c.failed + c.rejected + c.expired + c.cancelled + c.queued + c.running;
    return conserved && c.arrived == 2000 ? 0 : 1;
}
