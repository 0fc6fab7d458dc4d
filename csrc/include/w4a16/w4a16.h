/* w4a16-gemm: fp16 activations x int4 weights GEMM for NVIDIA Hopper (sm_90a).
 *
 *   out[m, n] = alpha * sum_k x[m, k] * w[k, n] + bias[n],   w[k, n] = q[k, n] * s[k / g, n] (+ z[k / g, n])
 *
 * x, s, z, bias, out are fp16; q is signed int4 in [-8, 7]; accumulation is fp32.
 * Limits: m >= 1; n a multiple of 8; k a multiple of 64 and of g; g in {64, 128} or g == k (per-column).
 *
 * Typical use:
 *   1. w4a16_pack_weight(q, k, n, host_buf) once, copy host_buf (w4a16_packed_weight_bytes) to the device;
 *   2. fill a w4a16_gemm_args_t, w4a16_workspace_size(), allocate the workspace once and zero-fill it once
 *      (cudaMemset): it starts with split-K counters that every call expects at zero and leaves at zero, so one
 *      workspace serves every config and shape on its stream (never two streams at once);
 *   3. w4a16_gemm(&args, W4A16_CONFIG_AUTO, ws, ws_bytes, stream) per call: no allocation, no synchronisation,
 *      so it can be captured in a CUDA graph. Zero-initialise args (flags = 0 is the default launch).
 * Every function returns a status; w4a16_status_string() names it and w4a16_last_error_message() gives the
 * detail of the last failure on the calling thread.
 */
#ifndef W4A16_W4A16_H_
#define W4A16_W4A16_H_

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define W4A16_API __declspec(dllexport)
#else
#define W4A16_API __attribute__((visibility("default")))
#endif

#define W4A16_VERSION_MAJOR 0
#define W4A16_VERSION_MINOR 1
#define W4A16_VERSION_PATCH 0

typedef enum w4a16_status {
  W4A16_OK = 0,
  W4A16_INVALID_SHAPE = 1,          /* m, n, k out of the supported set */
  W4A16_MISALIGNED = 2,             /* a pointer or leading dimension breaks 16-byte alignment */
  W4A16_UNSUPPORTED_GROUP = 3,      /* group size not 64, 128 or k, or k not a multiple of it */
  W4A16_NO_KERNEL_IN_BUILD = 4,     /* the requested config was not compiled (W4A16_KERNELS subset) */
  W4A16_CANNOT_IMPLEMENT = 5,       /* the config's CUTLASS can_implement refused the problem */
  W4A16_INSUFFICIENT_WORKSPACE = 6,
  W4A16_NO_SM90_DEVICE = 7,         /* no GPU, or the current GPU is not compute capability 9.0 */
  W4A16_CUDA_ERROR = 8,
  W4A16_INVALID_VALUE = 9,          /* null pointer, int4 value out of range, bad argument */
} w4a16_status_t;

#define W4A16_CONFIG_AUTO (-1)

typedef struct w4a16_gemm_args {
  int64_t m, n, k;
  int64_t group_size;          /* 64, 128 or k */
  const void* x;               /* fp16 [m, k], rows ldx elements apart */
  int64_t ldx;
  const void* packed_weight;   /* device copy of w4a16_pack_weight's output for (k, n) */
  const void* scales;          /* fp16 [k / group_size, n], row-major, contiguous */
  const void* zeros;           /* fp16 like scales, or NULL for symmetric weights */
  const void* bias;            /* fp16 [n], or NULL */
  float alpha;
  void* out;                   /* fp16 [m, n], rows ldo elements apart */
  int64_t ldo;
  uint32_t flags;              /* W4A16_FLAG_* bits; 0 (the default) suits almost every caller */
} w4a16_gemm_args_t;

/* Launch flags.
 * By default every kernel is launched with programmatic dependent launch (PDL): it may start while the kernel
 * before it on the stream is still running, sets up, streams its first packed weights (constants) into shared
 * memory, and then waits for that kernel to finish before it reads x, scales, zeros or bias or writes out.
 * Back-to-back GEMMs (a decode step, in a CUDA graph or not) thus overlap one call's start with the previous
 * call's tail. Kernels launched without PDL, copies and event waits before the call keep full stream order. */
enum {
  W4A16_FLAG_NO_PDL = 1u << 0,              /* plain stream-ordered launch (also: environment W4A16_PDL=0) */
  W4A16_FLAG_NO_WEIGHT_PREFETCH = 1u << 1   /* keep PDL but touch no memory at all before the previous kernel
                                               finishes: set it when that kernel writes the packed weights */
};
#define W4A16_FLAG_ALL (W4A16_FLAG_NO_PDL | W4A16_FLAG_NO_WEIGHT_PREFETCH)

enum {
  W4A16_SCHEDULE_COOPERATIVE = 0, /* CUTLASS: two consumer warpgroups split each tile */
  W4A16_SCHEDULE_PINGPONG = 1,    /* CUTLASS: each consumer warpgroup owns a tile, epilogues overlap */
  W4A16_SCHEDULE_DECODE = 2       /* memory-bound split-K kernel for small m (no CUTLASS) */
};

typedef struct w4a16_config_info {
  const char* name;            /* e.g. "w4a16_sm90_n128_m16_k64_c1x1_coop_s" */
  int tile_n, tile_m, tile_k;  /* output features x tokens x k per CTA */
  int cluster_n, cluster_m;
  int schedule;                /* W4A16_SCHEDULE_*: how the CTAs share the work */
  int zeros;                   /* 1: serves weights with zero points, 0: scale-only */
  int stream_k;                /* 1: stream-K scheduler (K split across CTAs when tiles < SMs) */
} w4a16_config_info_t;

W4A16_API const char* w4a16_status_string(w4a16_status_t status);
W4A16_API const char* w4a16_last_error_message(void);
W4A16_API const char* w4a16_version(void);

/* Configs compiled into this build. */
W4A16_API int w4a16_num_configs(void);
W4A16_API w4a16_status_t w4a16_get_config_info(int config, w4a16_config_info_t* info);
W4A16_API int w4a16_find_config(const char* name); /* index, or -1 */

/* The default heuristic's choice for a problem on a GPU with sm_count SMs (0: the current device's). */
W4A16_API w4a16_status_t w4a16_select_config(const w4a16_gemm_args_t* args, int sm_count, int* config);

/* What a call would launch, as one line of text (NUL-terminated, at most text_len bytes; 512 always suffice):
 * the config (config, or the heuristic's choice for W4A16_CONFIG_AUTO), its tile shape and grid, and for the
 * decode kernel the plan it derives from the problem (kernel, tile, K split, CTAs, split-K reduction). Only the
 * problem in args is read (m, n, k, group_size, whether zeros is set); no pointer is dereferenced. sm_count 0: the
 * current device, with its own cluster residency; > 0: a GPU of that many SMs with an H200's residency scaled
 * to it, no GPU needed. INVALID_VALUE (and the text cut short) when text_len is too small. */
W4A16_API w4a16_status_t w4a16_describe_launch(const w4a16_gemm_args_t* args, int config, int sm_count, char* text,
                                               size_t text_len);

/* Does config (or W4A16_CONFIG_AUTO) run this problem? Checks shapes, alignment, group size, pointers. */
W4A16_API w4a16_status_t w4a16_can_implement(const w4a16_gemm_args_t* args, int config);
W4A16_API w4a16_status_t w4a16_workspace_size(const w4a16_gemm_args_t* args, int config, size_t* bytes);

/* Launches on stream. Asynchronous; never allocates or synchronises. A workspace (where the config needs one) is
 * 16-byte aligned, was zero-filled once after its allocation, and is used by one stream at a time. */
W4A16_API w4a16_status_t w4a16_gemm(const w4a16_gemm_args_t* args, int config, void* workspace,
                                    size_t workspace_bytes, cudaStream_t stream);

/* Weight packing, host side. q is int8 [k, n] row-major with values in [-8, 7]. */
W4A16_API size_t w4a16_packed_weight_bytes(int64_t k, int64_t n);
W4A16_API w4a16_status_t w4a16_pack_weight(const int8_t* q, int64_t k, int64_t n, void* packed);
W4A16_API w4a16_status_t w4a16_unpack_weight(const void* packed, int64_t k, int64_t n, int8_t* q);

/* NO_SM90_DEVICE unless the current device is compute capability 9.0; fills name (may be NULL). */
W4A16_API w4a16_status_t w4a16_check_device(int device, char* name, size_t name_len, int* sm_count);

#ifdef __cplusplus
}
#endif

#endif /* W4A16_W4A16_H_ */
