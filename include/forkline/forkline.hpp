// forkline/forkline.hpp: the whole public API in one include.
#pragma once

#include "forkline/errors.hpp"        // config_error, system_failure, runtime_stopped
#include "forkline/invoke.hpp"        // invoke
#include "forkline/parallel_for.hpp"  // parallel_for
#include "forkline/runtime.hpp"       // runtime, runtime_config, default_runtime
#include "forkline/task_group.hpp"    // task_group
#include "forkline/topology.hpp"      // topology, placement_config, placement_plan
