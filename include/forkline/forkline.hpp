/// @file forkline/forkline.hpp
/// The whole public API in one include.
/// @code
/// #include <forkline/forkline.hpp>
/// @endcode
#pragma once

#include "forkline/affinity.hpp"        // affinity_block, static_affinity
#include "forkline/batch_stream.hpp"  // batch_stream, batch_config
#include "forkline/backoff.hpp"         // full_jitter_backoff, decorrelated_jitter_backoff
#include "forkline/errors.hpp"        // config_error, system_failure, runtime_stopped
#include "forkline/invoke.hpp"        // invoke, parallel_invoke
#include "forkline/io.hpp"            // io::reader, io::writer, io::chunk
#include "forkline/isolate.hpp"       // isolate
#include "forkline/latency_histogram.hpp"  // latency_histogram, latency_summary, summarize
#include "forkline/numa_memory.hpp"   // numa_array, first_touch, page_nodes
#include "forkline/parallel_for.hpp"  // parallel_for
#include "forkline/parallel_reduce.hpp"  // parallel_reduce, transform_reduce
#include "forkline/parallel_sort.hpp"  // parallel_sort
#include "forkline/pipeline.hpp"      // run_pipeline, stage, flow_control
#include "forkline/probe.hpp"         // probe::scaling, probe::measure_work_span
#include "forkline/read_stage.hpp"    // read_stage (an io::reader as a first stage)
#include "forkline/route.hpp"         // jump_hash, key_router
#include "forkline/runtime.hpp"       // runtime, runtime_config, default_runtime
#include "forkline/scaling.hpp"       // fit_amdahl, fit_usl, karp_flatt
#include "forkline/stats.hpp"         // report, runtime_report, write_stats_text
#include "forkline/stream.hpp"        // stream_executor, stream_config, request_options
#include "forkline/task_group.hpp"    // task_group
#include "forkline/topology.hpp"      // topology, placement_config, placement_plan
#include "forkline/version.hpp"       // FORKLINE_VERSION_MAJOR, _MINOR, _PATCH, _STRING
