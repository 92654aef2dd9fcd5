// SPDX-License-Identifier: GPL-2.0
/*
 * Defines VexFS's tracepoints (vexfs_trace.h) and, for each, the
 * `rust_do_trace_<event>` function that Rust calls once the tracepoint's
 * static key says it is enabled (kmod/vfs/trace.rs). Why C: tracepoints
 * are made by the TRACE_EVENT macros, which only C can expand.
 */
#define CREATE_TRACE_POINTS
#define CREATE_RUST_TRACE_POINTS
#include "vexfs_trace.h"
