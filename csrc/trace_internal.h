/* trace_internal.h: a parsed allocation trace, shared by trace.c (the parser) and replay.c. */
#ifndef AETHER_TRACE_INTERNAL_H
#define AETHER_TRACE_INTERNAL_H

#include "internal.h"

enum { AE_TRACE_ALLOC = 0, AE_TRACE_FREE = 1 };

/* One operation: ids are dense (0 .. info.ids-1) and reused after a free; a free carries the allocation's size. */
typedef struct ae_trace_op {
  uint64_t size;
  uint32_t id;
  uint8_t kind;
} ae_trace_op;

struct aether_trace {
  ae_trace_op *ops;
  uint64_t n, cap;
  aether_trace_info info;
};

#endif
