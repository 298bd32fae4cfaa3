/* deepseek.h - run, quantize, fine-tune and train transformer language models in one C header.

   Public domain or MIT, at your choice (see LICENSE at the end of this file).

   ============================================================================================
   0. QUICK START
   ============================================================================================

   In exactly one C or C++ file:

       #define DEEPSEEK_IMPLEMENTATION
       #include "deepseek.h"

   and include "deepseek.h" without the macro everywhere else. Link with -lm and -lpthread
   (on Windows nothing extra). No -march flag is needed: SIMD kernels are chosen at run time.

   ============================================================================================
   1. TABLE OF CONTENTS          (search for the anchor, e.g. "// >>gguf")
   ============================================================================================

       >>api          public declarations (types, enums, config structs, functions)
       >>platform     threads + pool, mmap, clock, cpuid, aligned alloc, allocator + logger hooks
       >>util         arena, hash map, JSON read/write, UTF-8, RNG
       >>dtype        f16/bf16/fp8 conversion, quant block formats (ggml layouts)
       >>kernels      scalar reference + AVX2 / AVX-512 / NEON; run-time dispatch
       >>gguf         GGUF v3 read (validating) and write
       >>tokenizer    unicode tables, pre-tokenizers, byte-level BPE, SPM, trainer
       >>model        config, architectures (llama, qwen2)
       >>infer        session, KV cache, forward, sampler, generate, chat templates
       >>train        forward/backward pairs, loss, AdamW, mixed precision, checkpoints

   ============================================================================================
   2. CONFIGURATION MACROS       (define before including the implementation)
   ============================================================================================

       DEEPSEEK_IMPLEMENTATION   emit the implementation in this translation unit
       DS_STATIC                 make every public function static (private copy per TU)
       DS_SHARED                 build or use a shared library (dllexport / dllimport)
       DS_BUILD_SHARED           with DS_SHARED: this TU builds the shared library
       DS_NO_SIMD                use only the scalar reference kernels
       DS_NO_THREADS             no thread pool (everything runs on the calling thread)

   ============================================================================================
   3. CONVENTIONS
   ============================================================================================

   Names      public ds_ / DS_, internal ds__ / DS__.
   Errors     every fallible function returns ds_status (DS_OK = 0, errors negative).
              ds_status_str() names the code; ds_last_error() gives the message of the last
              failure on the calling thread, with context ("gguf: tensor 'blk.3.attn_q.weight':
              data ends at 912, file has 640 bytes"). The library never exits, aborts or prints
              on bad input; it logs only through a logger the host installed.
   Memory     every allocation goes through the allocator set by ds_set_allocator()
              (default malloc/free). Model weights are memory-mapped read-only where possible.
   Config     config structs are zero-initialisable: a 0 field means "the default".
   Threads    ds_pool runs parallel loops; a host with its own job system installs a
              parallel_for hook instead (ds_pool_config.parallel_for). A ds_model is read-only
              and may be shared by threads; a ds_session belongs to one thread at a time.
   Thread safety of the global hooks: ds_set_allocator / ds_set_logger must be called before
              other threads use the library.
*/
#if defined(DEEPSEEK_IMPLEMENTATION) && !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
/* mmap, clock_gettime, pthreads under strict -std=c99: the implementation TU should include
   this header before any system header (or define _POSIX_C_SOURCE itself). */
#define _POSIX_C_SOURCE 200809L
#endif
#ifndef DEEPSEEK_H
#define DEEPSEEK_H

// >>api
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#if defined(DS_STATIC)
#define DS_API static
#elif defined(DS_SHARED) && defined(_WIN32)
#if defined(DS_BUILD_SHARED)
#define DS_API __declspec(dllexport)
#else
#define DS_API __declspec(dllimport)
#endif
#else
#define DS_API extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define DS_VERSION_MAJOR 0
#define DS_VERSION_MINOR 1
#define DS_VERSION_PATCH 0

/* ---- status ------------------------------------------------------------------------------ */
typedef enum ds_status {
    DS_OK = 0,
    DS_ERR_INVALID_ARG = -1,   /* a caller passed something impossible (NULL, bad size) */
    DS_ERR_NO_MEMORY = -2,     /* an allocation failed */
    DS_ERR_IO = -3,            /* open / read / write / rename failed */
    DS_ERR_FORMAT = -4,        /* a file is malformed (bad magic, truncated, inconsistent) */
    DS_ERR_UNSUPPORTED = -5,   /* well-formed but not something we can handle */
    DS_ERR_BOUNDS = -6,        /* an offset or size points outside its container */
    DS_ERR_OVERFLOW = -7,      /* a count or size overflows */
    DS_ERR_NOT_FOUND = -8,     /* a named key, tensor or token does not exist */
    DS_ERR_CANCELLED = -9,     /* the host cancelled the operation */
    DS_ERR_STATE = -10,        /* called in the wrong state (e.g. context full) */
    DS_ERR_TYPE = -11          /* a value has another type than expected */
} ds_status;

/* Name of a status code ("DS_ERR_FORMAT"). Never NULL. Thread-safe. */
DS_API const char *ds_status_str(ds_status s);
/* Message of the last failure on this thread ("" if none). Valid until the next failure on
   this thread. Thread-safe (thread-local). */
DS_API const char *ds_last_error(void);
/* Clear the calling thread's message. */
DS_API void ds_clear_error(void);

/* ---- allocator and logger hooks ---------------------------------------------------------- */
typedef struct ds_allocator {
    void *(*alloc)(size_t size, size_t align, void *user); /* align is a power of two <= 4096 */
    void (*free)(void *ptr, void *user);
    void *user;
} ds_allocator;

typedef enum ds_log_level { DS_LOG_ERROR = 0, DS_LOG_WARN = 1, DS_LOG_INFO = 2, DS_LOG_DEBUG = 3 } ds_log_level;
typedef void (*ds_log_fn)(ds_log_level level, const char *msg, void *user);

/* Install a global allocator (NULL restores malloc/free). Call before any other use. */
DS_API void ds_set_allocator(const ds_allocator *a);
/* Install a global logger (NULL: the library prints nothing). Errors are logged at
   DS_LOG_ERROR as they are raised. Call before any other use. */
DS_API void ds_set_logger(ds_log_fn fn, void *user, ds_log_level max_level);
DS_API void *ds_alloc(size_t size);   /* through the installed allocator, 64-byte aligned */
DS_API void ds_free(void *p);

/* ---- platform ---------------------------------------------------------------------------- */
/* Monotonic clock in seconds. */
DS_API double ds_time(void);

/* CPU features found at run time (and honoured by kernel dispatch). */
enum {
    DS_CPU_AVX2 = 1 << 0, DS_CPU_FMA = 1 << 1, DS_CPU_F16C = 1 << 2, DS_CPU_AVX512F = 1 << 3,
    DS_CPU_AVX512BW = 1 << 4, DS_CPU_AVX512VL = 1 << 5, DS_CPU_AVX512VNNI = 1 << 6,
    DS_CPU_AVX512BF16 = 1 << 7, DS_CPU_AVXVNNI = 1 << 8, DS_CPU_NEON = 1 << 9,
    DS_CPU_NEON_DOTPROD = 1 << 10
};
DS_API unsigned ds_cpu_features(void);
/* Restrict the features the kernels may use (mask of DS_CPU_*). Tests use this to compare
   each SIMD path with the scalar reference. Not thread-safe with running kernels. */
DS_API void ds_cpu_set_mask(unsigned mask);

/* A read-only view of a whole file, memory-mapped where possible (read() otherwise). */
typedef struct ds_mapped_file {
    const uint8_t *data;
    size_t size;
    void *impl_;
} ds_mapped_file;
DS_API ds_status ds_map_file(const char *path, ds_mapped_file *out);
DS_API void ds_unmap_file(ds_mapped_file *f);

/* ---- thread pool ------------------------------------------------------------------------- */
/* task(ctx, i, n) is called once for each i in [0, n). */
typedef void (*ds_task_fn)(void *ctx, int i, int n);
/* A host job system: run task(ctx, i, n) for every i in [0, n) and return when all are done. */
typedef void (*ds_parallel_for_fn)(void *host, ds_task_fn task, void *ctx, int n);

typedef struct ds_pool_config {
    int n_threads;                    /* 0: number of online CPUs; 1: no worker threads */
    ds_parallel_for_fn parallel_for;  /* optional: run loops on the host's own job system */
    void *host;                       /* passed to parallel_for */
    int host_threads;                 /* with parallel_for: how many tasks run at once (0: 1) */
} ds_pool_config;
typedef struct ds_pool ds_pool;

DS_API ds_status ds_pool_create(const ds_pool_config *cfg, ds_pool **out);
DS_API void ds_pool_destroy(ds_pool *p);
DS_API int ds_pool_size(const ds_pool *p);  /* how many tasks may run at once */
/* Run task for i in [0, n) on the pool (the calling thread takes part). p may be NULL (runs
   inline). Not re-entrant: one loop at a time per pool. */
DS_API void ds_pool_run(ds_pool *p, ds_task_fn task, void *ctx, int n);

/* ---- dtypes ------------------------------------------------------------------------------ */
/* Tensor element types; the values are ggml's type ids as stored in GGUF files. */
typedef enum ds_type {
    DS_TYPE_F32 = 0, DS_TYPE_F16 = 1, DS_TYPE_Q4_0 = 2, DS_TYPE_Q4_1 = 3,
    DS_TYPE_Q8_0 = 8, DS_TYPE_Q8_1 = 9, DS_TYPE_Q4_K = 12, DS_TYPE_Q6_K = 14,
    DS_TYPE_Q8_K = 15, DS_TYPE_BF16 = 30,
    DS_TYPE_COUNT_ = 40
} ds_type;

// >>api:dtype
/* Elements per block (1 for float types) and bytes per block; 0 for ids we do not know. */
DS_API size_t ds_type_block_elems(ds_type t);
DS_API size_t ds_type_block_bytes(ds_type t);
DS_API const char *ds_type_name(ds_type t);   /* "Q4_1"; "?" for unknown ids */
/* Bytes of n elements of type t: DS_ERR_TYPE for an unknown type, DS_ERR_FORMAT when n is not
   a whole number of blocks, DS_ERR_OVERFLOW when the size does not fit in 63 bits. */
DS_API ds_status ds_type_nbytes(ds_type t, int64_t n, uint64_t *out);

// >>api:kernels

// >>api:gguf
/* GGUF v2/v3 files (little-endian), read with full validation and written atomically.
   ds_gguf_open() maps the file and checks everything before returning: magic, version,
   counts against the bytes left, string and array lengths, value and tensor type ids, n_dims
   <= 4, element counts and byte sizes without overflow, general.alignment (u32, power of two,
   default 32), every tensor offset aligned and every tensor inside the file, no two tensors
   overlapping, no duplicate keys or tensor names. Any violation returns a DS_ERR_* with a
   message naming the key or tensor and the offsets. Everything returned points into the
   file and lives until ds_gguf_close(). A ds_gguf is read-only: threads may share it.
   Errors: DS_ERR_FORMAT (malformed or inconsistent, a fixed-size field cut off),
   DS_ERR_BOUNDS (a length, count or offset reaches past the end of the file),
   DS_ERR_OVERFLOW (a size computation overflows), DS_ERR_TYPE (unknown type id),
   DS_ERR_UNSUPPORTED (version 1 or unknown, big-endian, nested arrays). */
typedef enum ds_gguf_type {
    DS_GGUF_U8 = 0, DS_GGUF_I8 = 1, DS_GGUF_U16 = 2, DS_GGUF_I16 = 3, DS_GGUF_U32 = 4,
    DS_GGUF_I32 = 5, DS_GGUF_F32 = 6, DS_GGUF_BOOL = 7, DS_GGUF_STRING = 8, DS_GGUF_ARRAY = 9,
    DS_GGUF_U64 = 10, DS_GGUF_I64 = 11, DS_GGUF_F64 = 12
} ds_gguf_type;
typedef struct ds_str { const char *ptr; size_t len; } ds_str;   /* not NUL-terminated; points into the file */
typedef struct ds_gguf_kv {
    ds_str key;
    ds_gguf_type type;
    ds_gguf_type arr_type;      /* for DS_GGUF_ARRAY: element type and count */
    uint64_t arr_len;
    /* the raw little-endian value bytes in the file (may be unaligned): a scalar itself; for a
       string its u64 length then its bytes; for an array its first element */
    const uint8_t *data;
} ds_gguf_kv;
typedef struct ds_gguf_tensor {
    ds_str name;
    ds_type type;
    int n_dims;
    int64_t ne[4];          /* ne[0] is the contiguous (row) dimension, unused dims 1 */
    uint64_t offset;        /* from the start of the data section */
    const void *data;       /* inside the mapped file */
    uint64_t nbytes;
} ds_gguf_tensor;
typedef struct ds_gguf ds_gguf;

DS_API ds_status ds_gguf_open(const char *path, ds_gguf **out);            /* mmaps (ds_map_file) */
DS_API ds_status ds_gguf_open_memory(const void *data, size_t size, ds_gguf **out); /* data must outlive g */
DS_API void ds_gguf_close(ds_gguf *g);
DS_API uint32_t ds_gguf_version(const ds_gguf *g);
DS_API uint32_t ds_gguf_alignment(const ds_gguf *g);
DS_API uint64_t ds_gguf_data_offset(const ds_gguf *g);    /* where the data section starts */
DS_API uint64_t ds_gguf_file_size(const ds_gguf *g);
DS_API const char *ds_gguf_type_name(ds_gguf_type t);     /* "u32", "string"; "?" if unknown */
DS_API int64_t ds_gguf_n_kv(const ds_gguf *g);
DS_API const ds_gguf_kv *ds_gguf_kv_at(const ds_gguf *g, int64_t i);     /* NULL out of range */
DS_API const ds_gguf_kv *ds_gguf_find(const ds_gguf *g, const char *key);   /* NULL if absent; hashed */
/* typed getters: DS_ERR_NOT_FOUND if absent, DS_ERR_TYPE if the stored type does not convert
   (integers convert between widths when the value fits; f32 accepts f32/f64) */
DS_API ds_status ds_gguf_get_u32(const ds_gguf *g, const char *key, uint32_t *out);
DS_API ds_status ds_gguf_get_i32(const ds_gguf *g, const char *key, int32_t *out);
DS_API ds_status ds_gguf_get_u64(const ds_gguf *g, const char *key, uint64_t *out);
DS_API ds_status ds_gguf_get_i64(const ds_gguf *g, const char *key, int64_t *out);
DS_API ds_status ds_gguf_get_f32(const ds_gguf *g, const char *key, float *out);
DS_API ds_status ds_gguf_get_f64(const ds_gguf *g, const char *key, double *out);
DS_API ds_status ds_gguf_get_bool(const ds_gguf *g, const char *key, int *out);
DS_API ds_status ds_gguf_get_str(const ds_gguf *g, const char *key, ds_str *out);
/* Array: element type, count and pointer to the packed little-endian elements (unaligned);
   for a string array data is the first encoded string (read them with ds_gguf_get_arr_str).
   Any of elem, n, data may be NULL. */
DS_API ds_status ds_gguf_get_arr(const ds_gguf *g, const char *key, ds_gguf_type *elem, uint64_t *n, const void **data);
/* String array: fills out[0..n); n must equal the array length (DS_ERR_INVALID_ARG otherwise). */
DS_API ds_status ds_gguf_get_arr_str(const ds_gguf *g, const char *key, ds_str *out, uint64_t n);
DS_API int64_t ds_gguf_n_tensors(const ds_gguf *g);
DS_API const ds_gguf_tensor *ds_gguf_tensor_at(const ds_gguf *g, int64_t i);  /* file order */
DS_API const ds_gguf_tensor *ds_gguf_find_tensor(const ds_gguf *g, const char *name);  /* hashed, O(1) */

/* Writer: collects KVs (copied) and tensors (referenced), then writes a GGUF v3 file. Setting a
   key twice replaces its value; KVs keep the order they were first set in. Tensors are laid
   out in the order added, each at a multiple of general.alignment (set it as a u32 power of
   two to change the default 32). Not thread-safe. */
typedef struct ds_gguf_writer ds_gguf_writer;
DS_API ds_status ds_gguf_writer_create(ds_gguf_writer **out);
DS_API void ds_gguf_writer_free(ds_gguf_writer *w);
DS_API ds_status ds_gguf_writer_set_u32(ds_gguf_writer *w, const char *key, uint32_t v);
DS_API ds_status ds_gguf_writer_set_i32(ds_gguf_writer *w, const char *key, int32_t v);
DS_API ds_status ds_gguf_writer_set_u64(ds_gguf_writer *w, const char *key, uint64_t v);
DS_API ds_status ds_gguf_writer_set_i64(ds_gguf_writer *w, const char *key, int64_t v);
DS_API ds_status ds_gguf_writer_set_f32(ds_gguf_writer *w, const char *key, float v);
DS_API ds_status ds_gguf_writer_set_f64(ds_gguf_writer *w, const char *key, double v);
DS_API ds_status ds_gguf_writer_set_bool(ds_gguf_writer *w, const char *key, int v);
DS_API ds_status ds_gguf_writer_set_str(ds_gguf_writer *w, const char *key, const char *v);
/* any scalar value type by id (u8, i16, ...): value holds its little-endian bytes */
DS_API ds_status ds_gguf_writer_set_scalar(ds_gguf_writer *w, const char *key, ds_gguf_type type, const void *value);
/* numeric array of n elements of type elem, packed (bools: one byte each) */
DS_API ds_status ds_gguf_writer_set_arr(ds_gguf_writer *w, const char *key, ds_gguf_type elem, const void *data, uint64_t n);
DS_API ds_status ds_gguf_writer_set_arr_str(ds_gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* Copies every KV of g (replacing keys already set): for converters and checkpoints. */
DS_API ds_status ds_gguf_writer_copy_kv(ds_gguf_writer *w, const ds_gguf *g);
/* ne[0] is the contiguous dimension and a whole number of blocks of type; n_dims in 1..4.
   data is referenced, not copied: it must stay valid until ds_gguf_writer_write returns. */
DS_API ds_status ds_gguf_writer_add_tensor(ds_gguf_writer *w, const char *name, ds_type type, int n_dims, const int64_t *ne, const void *data);
/* atomic: writes PATH.tmp, fsyncs, renames over PATH (and fsyncs the folder) */
DS_API ds_status ds_gguf_writer_write(ds_gguf_writer *w, const char *path);

// >>api:tokenizer

// >>api:model
/* The model's shape, shared by inference, training and the GGUF metadata. Each layer names its
   attention kind and feed-forward kind, so swapping one for another is a one-line change. */
#define DS_MAX_LAYERS 256
typedef enum ds_attn_kind { DS_ATTN_DENSE = 0, DS_ATTN_MLA = 1, DS_ATTN_SDA = 2 } ds_attn_kind;
typedef enum ds_ffn_kind { DS_FFN_DENSE = 0, DS_FFN_MOE = 1 } ds_ffn_kind;
typedef enum ds_gating { DS_GATING_SOFTMAX = 0, DS_GATING_SIGMOID = 1 } ds_gating;
typedef struct ds_layer_config {
    ds_attn_kind attn;
    ds_ffn_kind ffn;
} ds_layer_config;

typedef struct ds_model_config {
    char arch[32];        /* "llama", "qwen2", "deepseek2" */
    int n_vocab;
    int n_ctx;            /* context length the model was trained for */
    int n_embd;           /* residual width */
    int n_layer;
    int n_head;
    int n_head_kv;        /* < n_head: grouped-query attention */
    int head_dim;         /* 0: n_embd / n_head */
    int n_ff;             /* dense SwiGLU hidden width */
    float norm_eps;       /* RMSNorm epsilon (0: 1e-5) */
    float rope_base;      /* 0: 10000 */
    int n_rot;            /* rotated dims per head (0: head_dim) */
    int rope_neox;        /* 1: half-split pairs (qwen2), 0: adjacent pairs (llama GGUF) */
    int tied_output;      /* output projection shares token_embd */
    int qkv_bias;         /* qwen2: biases on Q, K, V */
    /* MLA (DS_ATTN_MLA layers) */
    int q_lora_rank;      /* 0: no query compression */
    int kv_lora_rank;
    int qk_nope_dim, qk_rope_dim, v_head_dim;
    /* MoE (DS_FFN_MOE layers) */
    int n_expert, n_expert_used, n_expert_shared, n_ff_expert;
    int n_expert_groups, n_groups_used;   /* group-limited routing (0: off) */
    ds_gating gating;
    float routed_scale;   /* 0: 1 */
    int norm_topk;        /* renormalise the chosen experts' weights */
    ds_layer_config layers[DS_MAX_LAYERS];
} ds_model_config;

// >>api:infer

// >>api:train

#ifdef __cplusplus
}
#endif
#endif /* DEEPSEEK_H */

/* ========================================================================================== */
/*                                     IMPLEMENTATION                                          */
/* ========================================================================================== */
#if defined(DEEPSEEK_IMPLEMENTATION) && !defined(DEEPSEEK_IMPLEMENTATION_DONE_)
#define DEEPSEEK_IMPLEMENTATION_DONE_

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <float.h>
#include <limits.h>
#include <errno.h>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#endif
#if !defined(DS_NO_THREADS) && !defined(_WIN32)
#include <pthread.h>
#endif

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define DS__X86 1
#if !defined(DS_NO_SIMD) && (defined(__GNUC__) || defined(__clang__))
#define DS__X86_SIMD 1
#include <immintrin.h>
#include <cpuid.h>
#endif
#endif
#if defined(__aarch64__) && !defined(DS_NO_SIMD)
#define DS__NEON 1
#include <arm_neon.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define DS__TLS __thread
#define DS__LIKELY(x) __builtin_expect(!!(x), 1)
#define DS__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define DS__FMT(a, b) __attribute__((format(printf, a, b)))
#define DS__MAYBE_UNUSED __attribute__((unused))
#elif defined(_MSC_VER)
#define DS__TLS __declspec(thread)
#define DS__LIKELY(x) (x)
#define DS__UNLIKELY(x) (x)
#define DS__FMT(a, b)
#define DS__MAYBE_UNUSED
#else
#define DS__TLS
#define DS__LIKELY(x) (x)
#define DS__UNLIKELY(x) (x)
#define DS__FMT(a, b)
#define DS__MAYBE_UNUSED
#endif

#define DS__MIN(a, b) ((a) < (b) ? (a) : (b))
#define DS__MAX(a, b) ((a) > (b) ? (a) : (b))
#define DS__CAST(T, x) ((T)(x))   /* a cast that C++ also accepts (void* conversions) */

#ifdef __cplusplus
extern "C" {
#endif

// >>platform

/* ---- errors ------------------------------------------------------------------------------ */
static DS__TLS char ds__errbuf[512];

DS_API const char *ds_status_str(ds_status s) {
    switch (s) {
    case DS_OK: return "DS_OK";
    case DS_ERR_INVALID_ARG: return "DS_ERR_INVALID_ARG";
    case DS_ERR_NO_MEMORY: return "DS_ERR_NO_MEMORY";
    case DS_ERR_IO: return "DS_ERR_IO";
    case DS_ERR_FORMAT: return "DS_ERR_FORMAT";
    case DS_ERR_UNSUPPORTED: return "DS_ERR_UNSUPPORTED";
    case DS_ERR_BOUNDS: return "DS_ERR_BOUNDS";
    case DS_ERR_OVERFLOW: return "DS_ERR_OVERFLOW";
    case DS_ERR_NOT_FOUND: return "DS_ERR_NOT_FOUND";
    case DS_ERR_CANCELLED: return "DS_ERR_CANCELLED";
    case DS_ERR_STATE: return "DS_ERR_STATE";
    case DS_ERR_TYPE: return "DS_ERR_TYPE";
    }
    return "DS_ERR_UNKNOWN";
}

DS_API const char *ds_last_error(void) { return ds__errbuf; }
DS_API void ds_clear_error(void) { ds__errbuf[0] = 0; }

static ds_log_fn ds__log_fn = NULL;
static void *ds__log_user = NULL;
static ds_log_level ds__log_max = DS_LOG_INFO;

DS_API void ds_set_logger(ds_log_fn fn, void *user, ds_log_level max_level) {
    ds__log_fn = fn;
    ds__log_user = user;
    ds__log_max = max_level;
}

static void ds__logv(ds_log_level level, const char *fmt, va_list ap) {
    char buf[1024];
    if (!ds__log_fn || level > ds__log_max) return;
    vsnprintf(buf, sizeof buf, fmt, ap);
    ds__log_fn(level, buf, ds__log_user);
}

static DS__MAYBE_UNUSED void ds__log(ds_log_level level, const char *fmt, ...) DS__FMT(2, 3);
static void ds__log(ds_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ds__logv(level, fmt, ap);
    va_end(ap);
}

/* Record a failure message for ds_last_error() and return the status, so call sites read
   `return ds__fail(DS_ERR_FORMAT, "gguf: bad magic %08x", m);` */
static ds_status ds__fail(ds_status s, const char *fmt, ...) DS__FMT(2, 3);
static ds_status ds__fail(ds_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ds__errbuf, sizeof ds__errbuf, fmt, ap);
    va_end(ap);
    ds__log(DS_LOG_ERROR, "%s", ds__errbuf);
    return s;
}

/* ---- allocator --------------------------------------------------------------------------- */
static void *ds__default_alloc(size_t size, size_t align, void *user) {
    void *raw, *p;
    (void)user;
    /* over-allocate and keep the raw pointer just below the aligned block (portable C99) */
    if (size > SIZE_MAX - align - sizeof(void *)) return NULL;
    raw = malloc(size + align + sizeof(void *));
    if (!raw) return NULL;
    p = (void *)(((uintptr_t)raw + sizeof(void *) + align - 1) & ~(uintptr_t)(align - 1));
    ((void **)p)[-1] = raw;
    return p;
}
static void ds__default_free(void *p, void *user) {
    (void)user;
    if (p) free(((void **)p)[-1]);
}
static ds_allocator ds__allocator = {ds__default_alloc, ds__default_free, NULL};

DS_API void ds_set_allocator(const ds_allocator *a) {
    if (a && a->alloc && a->free) ds__allocator = *a;
    else {
        ds__allocator.alloc = ds__default_alloc;
        ds__allocator.free = ds__default_free;
        ds__allocator.user = NULL;
    }
}

static void *ds__alloc_aligned(size_t size, size_t align) {
    return ds__allocator.alloc(size ? size : 1, align, ds__allocator.user);
}
DS_API void *ds_alloc(size_t size) { return ds__alloc_aligned(size, 64); }
DS_API void ds_free(void *p) {
    if (p) ds__allocator.free(p, ds__allocator.user);
}
/* zeroed, with overflow-checked n * size */
static void *ds__calloc(size_t n, size_t size) {
    void *p;
    if (size && n > SIZE_MAX / size) return NULL;
    p = ds_alloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}
static DS__MAYBE_UNUSED char *ds__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = DS__CAST(char *, ds_alloc(n));
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- clock ------------------------------------------------------------------------------- */
DS_API double ds_time(void) {
#if defined(_WIN32)
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

/* ---- cpuid ------------------------------------------------------------------------------- */
static unsigned ds__cpu_detected = 0, ds__cpu_mask = ~0u;
static int ds__cpu_done = 0;

static unsigned ds__cpu_detect(void) {
    unsigned f = 0;
#if defined(DS__X86_SIMD)
    unsigned a, b, c, d, xcr0 = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (c & (1u << 27)) { /* OSXSAVE: the OS saves the vector registers we may use */
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = lo;
        (void)hi;
    }
    if ((xcr0 & 6) != 6) return 0;
    if (c & (1u << 12)) f |= DS_CPU_FMA;
    if (c & (1u << 29)) f |= DS_CPU_F16C;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        if (b & (1u << 5)) f |= DS_CPU_AVX2;
        if ((xcr0 & 0xe0) == 0xe0) {
            if (b & (1u << 16)) f |= DS_CPU_AVX512F;
            if (b & (1u << 30)) f |= DS_CPU_AVX512BW;
            if (b & (1u << 31)) f |= DS_CPU_AVX512VL;
            if (c & (1u << 11)) f |= DS_CPU_AVX512VNNI;
        }
    }
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
        if ((a & (1u << 5)) && (f & DS_CPU_AVX512F)) f |= DS_CPU_AVX512BF16;
        if (a & (1u << 4)) f |= DS_CPU_AVXVNNI;
    }
#elif defined(DS__NEON)
    f |= DS_CPU_NEON;
#if defined(__ARM_FEATURE_DOTPROD)
    f |= DS_CPU_NEON_DOTPROD;
#endif
#endif
    return f;
}

DS_API unsigned ds_cpu_features(void) {
    if (!ds__cpu_done) {
        ds__cpu_detected = ds__cpu_detect();
        ds__cpu_done = 1;
    }
    return ds__cpu_detected & ds__cpu_mask;
}
DS_API void ds_cpu_set_mask(unsigned mask) { ds__cpu_mask = mask; }

/* ---- mapped files ------------------------------------------------------------------------ */
DS_API ds_status ds_map_file(const char *path, ds_mapped_file *out) {
    if (!path || !out) return ds__fail(DS_ERR_INVALID_ARG, "map_file: NULL argument");
    memset(out, 0, sizeof *out);
#if defined(_WIN32)
    {
        HANDLE fh, mh;
        LARGE_INTEGER sz;
        void *p;
        fh = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
        if (fh == INVALID_HANDLE_VALUE) return ds__fail(DS_ERR_IO, "%s: cannot open", path);
        if (!GetFileSizeEx(fh, &sz)) {
            CloseHandle(fh);
            return ds__fail(DS_ERR_IO, "%s: cannot stat", path);
        }
        if (sz.QuadPart == 0) {
            CloseHandle(fh);
            out->data = (const uint8_t *)"";
            return DS_OK;
        }
        mh = CreateFileMappingA(fh, NULL, PAGE_READONLY, 0, 0, NULL);
        CloseHandle(fh);
        if (!mh) return ds__fail(DS_ERR_IO, "%s: cannot map", path);
        p = MapViewOfFile(mh, FILE_MAP_READ, 0, 0, 0);
        CloseHandle(mh);
        if (!p) return ds__fail(DS_ERR_IO, "%s: cannot map", path);
        out->data = (const uint8_t *)p;
        out->size = (size_t)sz.QuadPart;
        out->impl_ = p;
        return DS_OK;
    }
#else
    {
        struct stat st;
        int fd = open(path, O_RDONLY);
        void *p;
        if (fd < 0) return ds__fail(DS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return ds__fail(DS_ERR_IO, "%s: not a regular file", path);
        }
        out->size = (size_t)st.st_size;
        if (out->size == 0) {
            close(fd);
            out->data = (const uint8_t *)"";
            return DS_OK;
        }
        p = mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            close(fd);
            out->data = (const uint8_t *)p;
            out->impl_ = p;
            return DS_OK;
        }
        { /* read() fallback: the buffer is ours, marked by impl_ == NULL */
            uint8_t *buf = DS__CAST(uint8_t *, ds_alloc(out->size));
            size_t got = 0;
            if (!buf) {
                close(fd);
                return ds__fail(DS_ERR_NO_MEMORY, "%s: cannot allocate %zu bytes", path, out->size);
            }
            while (got < out->size) {
                ssize_t r = read(fd, buf + got, out->size - got);
                if (r <= 0) {
                    if (r < 0 && errno == EINTR) continue;
                    close(fd);
                    ds_free(buf);
                    return ds__fail(DS_ERR_IO, "%s: read failed", path);
                }
                got += (size_t)r;
            }
            close(fd);
            out->data = buf;
            return DS_OK;
        }
    }
#endif
}

DS_API void ds_unmap_file(ds_mapped_file *f) {
    if (!f || !f->data) return;
    if (f->size) {
#if defined(_WIN32)
        if (f->impl_) UnmapViewOfFile(f->impl_);
#else
        if (f->impl_) munmap(f->impl_, f->size);
        else ds_free((void *)f->data);
#endif
    }
    memset(f, 0, sizeof *f);
}

/* ---- thread pool ------------------------------------------------------------------------- */
/* Every worker takes part in every loop and checks out when the loop's tasks run dry; the
   caller returns only when all have checked out, so no worker can touch a loop's fields after
   the next loop starts writing them. Workers spin briefly on a generation counter before
   sleeping on a condition variable: a decode step runs hundreds of short parallel loops, and
   a futex wake per loop would cost more than the loop itself. Tasks are claimed from a shared
   atomic counter, so uneven tasks balance themselves. */
#define DS__ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define DS__ATOMIC_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define DS__ATOMIC_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)

static void ds__cpu_relax(void) {
#if defined(DS__X86_SIMD)
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

struct ds_pool {
    int n_threads;
    ds_parallel_for_fn host_for;
    void *host;
    int host_threads;
#if !defined(DS_NO_THREADS) && !defined(_WIN32)
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sleeping;
#endif
    /* the current loop: written by the caller only while no worker is inside a loop */
    ds_task_fn task;
    void *ctx;
    int n;
    int next;          /* next task index to claim (atomic) */
    int checked_out;   /* workers that finished the current loop (atomic) */
    unsigned gen;      /* bumped once per loop (atomic) */
    int quit;
};

static void ds__pool_work(ds_pool *p) {
    for (;;) {
        int i = DS__ATOMIC_ADD(&p->next, 1);
        if (i >= p->n) break;
        p->task(p->ctx, i, p->n);
    }
}

#if !defined(DS_NO_THREADS) && !defined(_WIN32)
static void *ds__pool_main(void *arg) {
    ds_pool *p = (ds_pool *)arg;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = DS__ATOMIC_LOAD(&p->gen)) == seen && !DS__ATOMIC_LOAD(&p->quit)) {
            if (++spins < 20000) {
                ds__cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            p->sleeping++;
            while (DS__ATOMIC_LOAD(&p->gen) == seen && !DS__ATOMIC_LOAD(&p->quit)) pthread_cond_wait(&p->cv, &p->mu);
            p->sleeping--;
            pthread_mutex_unlock(&p->mu);
        }
        if (DS__ATOMIC_LOAD(&p->quit)) return NULL;
        seen = g;
        ds__pool_work(p);
        DS__ATOMIC_ADD(&p->checked_out, 1);
    }
}
#endif

static int ds__online_cpus(void) {
#if defined(_WIN32)
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return (int)si.dwNumberOfProcessors;
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
#endif
}

DS_API ds_status ds_pool_create(const ds_pool_config *cfg, ds_pool **out) {
    ds_pool_config c;
    ds_pool *p;
    if (!out) return ds__fail(DS_ERR_INVALID_ARG, "pool: NULL out");
    *out = NULL;
    memset(&c, 0, sizeof c);
    if (cfg) c = *cfg;
    p = DS__CAST(ds_pool *, ds__calloc(1, sizeof *p));
    if (!p) return ds__fail(DS_ERR_NO_MEMORY, "pool: out of memory");
    if (c.parallel_for) {
        p->host_for = c.parallel_for;
        p->host = c.host;
        p->host_threads = c.host_threads > 0 ? c.host_threads : 1;
        p->n_threads = p->host_threads;
        *out = p;
        return DS_OK;
    }
    p->n_threads = c.n_threads > 0 ? c.n_threads : ds__online_cpus();
    if (p->n_threads > 512) p->n_threads = 512;
#if defined(DS_NO_THREADS) || defined(_WIN32)
    p->n_threads = 1;
#else
    if (p->n_threads > 1) {
        int i;
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->cv, NULL);
        p->threads = DS__CAST(pthread_t *, ds__calloc((size_t)p->n_threads - 1, sizeof(pthread_t)));
        if (!p->threads) {
            ds_free(p);
            return ds__fail(DS_ERR_NO_MEMORY, "pool: out of memory");
        }
        for (i = 0; i < p->n_threads - 1; i++) {
            if (pthread_create(&p->threads[i], NULL, ds__pool_main, p) != 0) {
                p->n_threads = i + 1;
                break;
            }
        }
    }
#endif
    *out = p;
    return DS_OK;
}

DS_API void ds_pool_destroy(ds_pool *p) {
    if (!p) return;
#if !defined(DS_NO_THREADS) && !defined(_WIN32)
    if (p->threads) {
        int i;
        pthread_mutex_lock(&p->mu);
        DS__ATOMIC_STORE(&p->quit, 1);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        for (i = 0; i < p->n_threads - 1; i++) pthread_join(p->threads[i], NULL);
        ds_free(p->threads);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
#endif
    ds_free(p);
}

DS_API int ds_pool_size(const ds_pool *p) { return p ? p->n_threads : 1; }

DS_API void ds_pool_run(ds_pool *p, ds_task_fn task, void *ctx, int n) {
    int i;
    if (n <= 0) return;
    if (p && p->host_for) {
        p->host_for(p->host, task, ctx, n);
        return;
    }
    if (!p || p->n_threads <= 1 || n == 1) {
        for (i = 0; i < n; i++) task(ctx, i, n);
        return;
    }
#if !defined(DS_NO_THREADS) && !defined(_WIN32)
    p->task = task;
    p->ctx = ctx;
    p->n = n;
    DS__ATOMIC_STORE(&p->next, 0);
    DS__ATOMIC_STORE(&p->checked_out, 0);
    pthread_mutex_lock(&p->mu);
    DS__ATOMIC_ADD(&p->gen, 1u);
    if (p->sleeping > 0) pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    ds__pool_work(p);
    while (DS__ATOMIC_LOAD(&p->checked_out) < p->n_threads - 1) ds__cpu_relax();
#endif
}

// >>util

// >>dtype
typedef struct ds__type_traits {
    const char *name;
    uint16_t block_elems, block_bytes;
} ds__type_traits;

/* ggml's block layouts: Q4_0 {f16 d; u8 qs[16]}, Q4_1 {f16 d, m; u8 qs[16]}, Q8_0 {f16 d;
   i8 qs[32]}, Q8_1 {f16 d, s; i8 qs[32]}, Q4_K {f16 d, dmin; u8 scales[12]; u8 qs[128]},
   Q6_K {u8 ql[128], qh[64]; i8 scales[16]; f16 d}, Q8_K {f32 d; i8 qs[256]; i16 bsums[16]} */
static ds__type_traits ds__type_info(ds_type t) {
    ds__type_traits r = {"?", 0, 0};
    switch (t) {
    case DS_TYPE_F32: r.name = "F32"; r.block_elems = 1; r.block_bytes = 4; break;
    case DS_TYPE_F16: r.name = "F16"; r.block_elems = 1; r.block_bytes = 2; break;
    case DS_TYPE_BF16: r.name = "BF16"; r.block_elems = 1; r.block_bytes = 2; break;
    case DS_TYPE_Q4_0: r.name = "Q4_0"; r.block_elems = 32; r.block_bytes = 18; break;
    case DS_TYPE_Q4_1: r.name = "Q4_1"; r.block_elems = 32; r.block_bytes = 20; break;
    case DS_TYPE_Q8_0: r.name = "Q8_0"; r.block_elems = 32; r.block_bytes = 34; break;
    case DS_TYPE_Q8_1: r.name = "Q8_1"; r.block_elems = 32; r.block_bytes = 36; break;
    case DS_TYPE_Q4_K: r.name = "Q4_K"; r.block_elems = 256; r.block_bytes = 144; break;
    case DS_TYPE_Q6_K: r.name = "Q6_K"; r.block_elems = 256; r.block_bytes = 210; break;
    case DS_TYPE_Q8_K: r.name = "Q8_K"; r.block_elems = 256; r.block_bytes = 292; break;
    case DS_TYPE_COUNT_: break;
    }
    return r;
}
DS_API size_t ds_type_block_elems(ds_type t) { return ds__type_info(t).block_elems; }
DS_API size_t ds_type_block_bytes(ds_type t) { return ds__type_info(t).block_bytes; }
DS_API const char *ds_type_name(ds_type t) { return ds__type_info(t).name; }
DS_API ds_status ds_type_nbytes(ds_type t, int64_t n, uint64_t *out) {
    ds__type_traits tr = ds__type_info(t);
    uint64_t blocks;
    if (!tr.block_elems) return ds__fail(DS_ERR_TYPE, "unknown tensor type id %d", (int)t);
    if (n < 0 || (uint64_t)n % tr.block_elems) return ds__fail(DS_ERR_FORMAT, "%lld elements are not whole %s blocks of %u", (long long)n, tr.name, (unsigned)tr.block_elems);
    blocks = (uint64_t)n / tr.block_elems;
    if (blocks > (UINT64_C(1) << 62) / tr.block_bytes) return ds__fail(DS_ERR_OVERFLOW, "%lld %s elements overflow a size", (long long)n, tr.name);
    *out = blocks * tr.block_bytes;
    return DS_OK;
}

// >>kernels

// >>gguf
/* Layout (all little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv; n_kv times
   {string key, u32 type, value}; n_tensors times {string name, u32 n_dims, u64 ne[n_dims],
   u32 type, u64 offset}; padding to the alignment; the data section. A string is a u64 byte
   length and the bytes; an array is u32 element type, u64 count, the elements. */
#define DS__GGUF_DEFAULT_ALIGN 32u
#define DS__GGUF_NAME_SHOWN 96   /* longest key or tensor name quoted in a message */

static uint32_t ds__gguf_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ds__gguf_u64(const uint8_t *p) { return (uint64_t)ds__gguf_u32(p) | (uint64_t)ds__gguf_u32(p + 4) << 32; }

/* bytes of one value of a fixed-size type; 0 for string, array and unknown ids */
static size_t ds__gguf_scalar_size(uint32_t t) {
    switch (t) {
    case DS_GGUF_U8: case DS_GGUF_I8: case DS_GGUF_BOOL: return 1;
    case DS_GGUF_U16: case DS_GGUF_I16: return 2;
    case DS_GGUF_U32: case DS_GGUF_I32: case DS_GGUF_F32: return 4;
    case DS_GGUF_U64: case DS_GGUF_I64: case DS_GGUF_F64: return 8;
    default: return 0;
    }
}

DS_API const char *ds_gguf_type_name(ds_gguf_type t) {
    static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* ---- name index: open addressing over indices, shared by reader and writer ---------------- */
typedef ds_str (*ds__gguf_key_fn)(const void *owner, int64_t i);
typedef struct ds__gguf_index {
    uint64_t *hash;   /* per slot */
    int64_t *slot;    /* item index + 1; 0 = empty */
    uint64_t mask;    /* capacity - 1 (capacity a power of two) */
    int64_t count;
} ds__gguf_index;

static uint64_t ds__gguf_hash(const char *s, size_t n) {   /* FNV-1a */
    uint64_t h = UINT64_C(1469598103934665603);
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * UINT64_C(1099511628211);
    return h;
}
static void ds__gguf_index_free(ds__gguf_index *ix) {
    ds_free(ix->hash);
    ds_free(ix->slot);
    memset(ix, 0, sizeof *ix);
}
static ds_status ds__gguf_index_alloc(ds__gguf_index *ix, uint64_t n_items) {
    uint64_t cap = 16;
    while (cap < 2 * n_items) cap *= 2;
    memset(ix, 0, sizeof *ix);
    ix->hash = DS__CAST(uint64_t *, ds__calloc((size_t)cap, sizeof(uint64_t)));
    ix->slot = DS__CAST(int64_t *, ds__calloc((size_t)cap, sizeof(int64_t)));
    if (!ix->hash || !ix->slot) {
        ds__gguf_index_free(ix);
        return ds__fail(DS_ERR_NO_MEMORY, "gguf: out of memory for a name index of %llu entries", (unsigned long long)n_items);
    }
    ix->mask = cap - 1;
    return DS_OK;
}
/* index of the item named s[0..n), or -1 */
static int64_t ds__gguf_index_find(const ds__gguf_index *ix, const char *s, size_t n, ds__gguf_key_fn key_at, const void *owner) {
    uint64_t h = ds__gguf_hash(s, n), i;
    if (!ix->slot) return -1;
    for (i = h & ix->mask; ix->slot[i]; i = (i + 1) & ix->mask) {
        if (ix->hash[i] == h) {
            ds_str k = key_at(owner, ix->slot[i] - 1);
            if (k.len == n && memcmp(k.ptr, s, n) == 0) return ix->slot[i] - 1;
        }
    }
    return -1;
}
/* adds item idx named s[0..n) (known absent); the table must have room */
static void ds__gguf_index_put(ds__gguf_index *ix, const char *s, size_t n, int64_t idx) {
    uint64_t h = ds__gguf_hash(s, n), i;
    for (i = h & ix->mask; ix->slot[i]; i = (i + 1) & ix->mask) {}
    ix->hash[i] = h;
    ix->slot[i] = idx + 1;
    ix->count++;
}

/* ---- reader ---------------------------------------------------------------------------- */
struct ds_gguf {
    ds_mapped_file map;       /* owned when opened from a path */
    const uint8_t *base;
    uint64_t size;
    uint32_t version, alignment;
    uint64_t data_offset;
    int64_t n_kv, n_tensors;
    ds_gguf_kv *kv;
    ds_gguf_tensor *tensors;
    ds__gguf_index kv_index, tensor_index;
};

/* parse position plus a description of what is being read, for messages */
typedef struct ds__gguf_cur {
    const uint8_t *base;
    uint64_t size, pos;
    char what[DS__GGUF_NAME_SHOWN + 48];   /* "key 'general.name'", "tensor #3 'x'" */
} ds__gguf_cur;

static void ds__gguf_what(ds__gguf_cur *c, const char *kind, ds_str name) {
    int n = name.len > DS__GGUF_NAME_SHOWN ? DS__GGUF_NAME_SHOWN : (int)name.len;
    snprintf(c->what, sizeof c->what, "%s '%.*s%s'", kind, n, name.ptr ? name.ptr : "", name.len > DS__GGUF_NAME_SHOWN ? "..." : "");
}

static ds_status ds__gguf_need(ds__gguf_cur *c, uint64_t n, const char *field) {
    if (n <= c->size - c->pos) return DS_OK;
    return ds__fail(DS_ERR_FORMAT, "gguf: %s: %s at offset %llu is cut off (needs %llu bytes, file has %llu)", c->what, field,
                    (unsigned long long)c->pos, (unsigned long long)n, (unsigned long long)c->size);
}
static ds_status ds__gguf_read_u32(ds__gguf_cur *c, const char *field, uint32_t *v) {
    ds_status s = ds__gguf_need(c, 4, field);
    if (s) return s;
    *v = ds__gguf_u32(c->base + c->pos);
    c->pos += 4;
    return DS_OK;
}
static ds_status ds__gguf_read_u64(ds__gguf_cur *c, const char *field, uint64_t *v) {
    ds_status s = ds__gguf_need(c, 8, field);
    if (s) return s;
    *v = ds__gguf_u64(c->base + c->pos);
    c->pos += 8;
    return DS_OK;
}
static ds_status ds__gguf_read_str(ds__gguf_cur *c, const char *field, ds_str *out) {
    uint64_t len, at = c->pos;
    ds_status s = ds__gguf_read_u64(c, field, &len);
    if (s) return s;
    if (len > c->size - c->pos)
        return ds__fail(DS_ERR_BOUNDS, "gguf: %s: %s length %llu at offset %llu runs past the end of the file (%llu bytes)", c->what, field,
                        (unsigned long long)len, (unsigned long long)at, (unsigned long long)c->size);
    out->ptr = (const char *)(c->base + c->pos);
    out->len = (size_t)len;
    c->pos += len;
    return DS_OK;
}

static ds_status ds__gguf_check_bools(ds__gguf_cur *c, const uint8_t *p, uint64_t n) {
    uint64_t i;
    for (i = 0; i < n; i++)
        if (p[i] > 1) return ds__fail(DS_ERR_FORMAT, "gguf: %s: bool value %u at offset %llu is not 0 or 1", c->what, p[i], (unsigned long long)(p + i - c->base));
    return DS_OK;
}

static ds_status ds__gguf_read_array(ds__gguf_cur *c, ds_gguf_kv *kv) {
    uint32_t et;
    uint64_t n, i, esize, at;
    ds_status s = ds__gguf_read_u32(c, "array element type", &et);
    if (!s) s = ds__gguf_read_u64(c, "array length", &n);
    if (s) return s;
    at = c->pos - 8;
    if (et == DS_GGUF_ARRAY) return ds__fail(DS_ERR_UNSUPPORTED, "gguf: %s: nested arrays are not supported", c->what);
    if (et != DS_GGUF_STRING && !ds__gguf_scalar_size(et)) return ds__fail(DS_ERR_TYPE, "gguf: %s: unknown array element type %u at offset %llu", c->what, et, (unsigned long long)(at - 4));
    kv->arr_type = (ds_gguf_type)et;
    kv->arr_len = n;
    kv->data = c->base + c->pos;
    if (et == DS_GGUF_STRING) {   /* each string takes at least its 8-byte length */
        if (n > (c->size - c->pos) / 8)
            return ds__fail(DS_ERR_BOUNDS, "gguf: %s: %llu strings at offset %llu cannot fit in the %llu bytes left", c->what, (unsigned long long)n,
                            (unsigned long long)at, (unsigned long long)(c->size - c->pos));
        for (i = 0; i < n; i++) {
            ds_str str;
            s = ds__gguf_read_str(c, "array string", &str);
            if (s) return s;
        }
        return DS_OK;
    }
    esize = ds__gguf_scalar_size(et);
    if (n > UINT64_MAX / esize) return ds__fail(DS_ERR_OVERFLOW, "gguf: %s: array of %llu %s at offset %llu overflows a size", c->what, (unsigned long long)n, ds_gguf_type_name((ds_gguf_type)et), (unsigned long long)at);
    if (n * esize > c->size - c->pos)
        return ds__fail(DS_ERR_BOUNDS, "gguf: %s: array of %llu %s at offset %llu runs past the end of the file (%llu bytes)", c->what, (unsigned long long)n,
                        ds_gguf_type_name((ds_gguf_type)et), (unsigned long long)at, (unsigned long long)c->size);
    if (et == DS_GGUF_BOOL && (s = ds__gguf_check_bools(c, c->base + c->pos, n))) return s;
    c->pos += n * esize;
    return DS_OK;
}

static ds_status ds__gguf_read_value(ds__gguf_cur *c, ds_gguf_kv *kv) {
    uint32_t t;
    size_t sz;
    ds_status s = ds__gguf_read_u32(c, "value type", &t);
    if (s) return s;
    sz = ds__gguf_scalar_size(t);
    if (!sz && t != DS_GGUF_STRING && t != DS_GGUF_ARRAY)
        return ds__fail(DS_ERR_TYPE, "gguf: %s: unknown value type %u at offset %llu", c->what, t, (unsigned long long)(c->pos - 4));
    kv->type = (ds_gguf_type)t;
    if (t == DS_GGUF_ARRAY) return ds__gguf_read_array(c, kv);
    kv->data = c->base + c->pos;
    if (t == DS_GGUF_STRING) {
        ds_str v;
        return ds__gguf_read_str(c, "string value", &v);
    }
    if ((s = ds__gguf_need(c, sz, "value"))) return s;
    if (t == DS_GGUF_BOOL && (s = ds__gguf_check_bools(c, kv->data, 1))) return s;
    c->pos += sz;
    return DS_OK;
}

static ds_str ds__gguf_kv_key(const void *g, int64_t i) { return ((const ds_gguf *)g)->kv[i].key; }
static ds_str ds__gguf_tensor_name(const void *g, int64_t i) { return ((const ds_gguf *)g)->tensors[i].name; }

static ds_status ds__gguf_read_kvs(ds_gguf *g, ds__gguf_cur *c) {
    int64_t i;
    ds_status s;
    /* every pair takes at least 13 bytes: the key length, the type and a one-byte value */
    if ((uint64_t)g->n_kv > (c->size - c->pos) / 13)
        return ds__fail(DS_ERR_BOUNDS, "gguf: header claims %lld key-value pairs, more than the %llu bytes after it can hold", (long long)g->n_kv, (unsigned long long)(c->size - c->pos));
    g->kv = DS__CAST(ds_gguf_kv *, ds__calloc((size_t)g->n_kv + 1, sizeof(ds_gguf_kv)));
    if (!g->kv) return ds__fail(DS_ERR_NO_MEMORY, "gguf: out of memory for %lld key-value pairs", (long long)g->n_kv);
    if ((s = ds__gguf_index_alloc(&g->kv_index, (uint64_t)g->n_kv))) return s;
    for (i = 0; i < g->n_kv; i++) {
        ds_gguf_kv *kv = &g->kv[i];
        uint64_t at = c->pos;
        int64_t dup;
        snprintf(c->what, sizeof c->what, "key-value pair #%lld", (long long)i);
        if ((s = ds__gguf_read_str(c, "key", &kv->key))) return s;
        ds__gguf_what(c, "key", kv->key);
        if ((s = ds__gguf_read_value(c, kv))) return s;
        dup = ds__gguf_index_find(&g->kv_index, kv->key.ptr, kv->key.len, ds__gguf_kv_key, g);
        if (dup >= 0)
            return ds__fail(DS_ERR_FORMAT, "gguf: %s appears twice (pairs #%lld and #%lld, the second at offset %llu)", c->what, (long long)dup, (long long)i, (unsigned long long)at);
        ds__gguf_index_put(&g->kv_index, kv->key.ptr, kv->key.len, i);
    }
    return DS_OK;
}

static ds_status ds__gguf_read_alignment(ds_gguf *g) {
    const ds_gguf_kv *kv = ds_gguf_find(g, "general.alignment");
    uint32_t a;
    g->alignment = DS__GGUF_DEFAULT_ALIGN;
    if (!kv) return DS_OK;
    if (kv->type != DS_GGUF_U32) return ds__fail(DS_ERR_TYPE, "gguf: key 'general.alignment' has type %s, expected u32", ds_gguf_type_name(kv->type));
    a = ds__gguf_u32(kv->data);
    if (a == 0 || (a & (a - 1))) return ds__fail(DS_ERR_FORMAT, "gguf: key 'general.alignment' is %u, not a power of two", a);
    g->alignment = a;
    return DS_OK;
}

/* n_dims, the shape and the byte size of one tensor */
static ds_status ds__gguf_read_shape(ds__gguf_cur *c, ds_gguf_tensor *t) {
    uint32_t n_dims, d, type;
    int64_t n_elems = 1;
    ds_status s = ds__gguf_read_u32(c, "n_dims", &n_dims);
    if (s) return s;
    if (n_dims > 4) return ds__fail(DS_ERR_FORMAT, "gguf: %s: n_dims %u at offset %llu is more than 4", c->what, n_dims, (unsigned long long)(c->pos - 4));
    t->n_dims = (int)n_dims;
    for (d = 0; d < 4; d++) t->ne[d] = 1;
    for (d = 0; d < n_dims; d++) {
        uint64_t ne;
        if ((s = ds__gguf_read_u64(c, "dimension", &ne))) return s;
        if (ne > (uint64_t)INT64_MAX) return ds__fail(DS_ERR_FORMAT, "gguf: %s: dimension %u is negative (%lld) at offset %llu", c->what, d, (long long)ne, (unsigned long long)(c->pos - 8));
        t->ne[d] = (int64_t)ne;
        if (ne && n_elems > INT64_MAX / (int64_t)ne) return ds__fail(DS_ERR_OVERFLOW, "gguf: %s: element count overflows (dimension %u is %llu)", c->what, d, (unsigned long long)ne);
        n_elems *= (int64_t)ne;
    }
    if ((s = ds__gguf_read_u32(c, "type", &type))) return s;
    if (type >= DS_TYPE_COUNT_ || !ds_type_block_elems((ds_type)type)) return ds__fail(DS_ERR_TYPE, "gguf: %s: unknown tensor type id %u at offset %llu", c->what, type, (unsigned long long)(c->pos - 4));
    t->type = (ds_type)type;
    if (t->ne[0] % (int64_t)ds_type_block_elems(t->type))
        return ds__fail(DS_ERR_FORMAT, "gguf: %s: row of %lld elements is not a whole number of %s blocks of %u", c->what, (long long)t->ne[0], ds_type_name(t->type), (unsigned)ds_type_block_elems(t->type));
    if ((s = ds_type_nbytes(t->type, n_elems, &t->nbytes))) return ds__fail(s, "gguf: %s: %lld %s elements overflow a size", c->what, (long long)n_elems, ds_type_name(t->type));
    return DS_OK;
}

static ds_status ds__gguf_read_tensor_infos(ds_gguf *g, ds__gguf_cur *c) {
    int64_t i;
    ds_status s;
    /* every info takes at least 24 bytes: name length, n_dims, type, offset */
    if ((uint64_t)g->n_tensors > (c->size - c->pos) / 24)
        return ds__fail(DS_ERR_BOUNDS, "gguf: header claims %lld tensors, more than the %llu bytes left at offset %llu can describe", (long long)g->n_tensors,
                        (unsigned long long)(c->size - c->pos), (unsigned long long)c->pos);
    g->tensors = DS__CAST(ds_gguf_tensor *, ds__calloc((size_t)g->n_tensors + 1, sizeof(ds_gguf_tensor)));
    if (!g->tensors) return ds__fail(DS_ERR_NO_MEMORY, "gguf: out of memory for %lld tensors", (long long)g->n_tensors);
    if ((s = ds__gguf_index_alloc(&g->tensor_index, (uint64_t)g->n_tensors))) return s;
    for (i = 0; i < g->n_tensors; i++) {
        ds_gguf_tensor *t = &g->tensors[i];
        int64_t dup;
        snprintf(c->what, sizeof c->what, "tensor #%lld", (long long)i);
        if ((s = ds__gguf_read_str(c, "name", &t->name))) return s;
        ds__gguf_what(c, "tensor", t->name);
        if ((s = ds__gguf_read_shape(c, t))) return s;
        if ((s = ds__gguf_read_u64(c, "offset", &t->offset))) return s;
        if (t->offset % g->alignment)
            return ds__fail(DS_ERR_FORMAT, "gguf: %s: data offset %llu is not a multiple of the alignment %u", c->what, (unsigned long long)t->offset, g->alignment);
        dup = ds__gguf_index_find(&g->tensor_index, t->name.ptr, t->name.len, ds__gguf_tensor_name, g);
        if (dup >= 0) return ds__fail(DS_ERR_FORMAT, "gguf: %s appears twice (tensors #%lld and #%lld)", c->what, (long long)dup, (long long)i);
        ds__gguf_index_put(&g->tensor_index, t->name.ptr, t->name.len, i);
    }
    return DS_OK;
}

/* every tensor's bytes inside the file */
static ds_status ds__gguf_place_tensors(ds_gguf *g) {
    int64_t i;
    for (i = 0; i < g->n_tensors; i++) {
        ds_gguf_tensor *t = &g->tensors[i];
        uint64_t room = g->size > g->data_offset ? g->size - g->data_offset : 0;
        if (t->offset > room || t->nbytes > room - t->offset) {
            int n = t->name.len > DS__GGUF_NAME_SHOWN ? DS__GGUF_NAME_SHOWN : (int)t->name.len;
            uint64_t end = g->data_offset + t->offset, e2 = end + t->nbytes;
            if (end < t->offset || e2 < end)
                return ds__fail(DS_ERR_BOUNDS, "gguf: tensor '%.*s': data offset %llu + %llu bytes overflows, file has %llu bytes", n, t->name.ptr,
                                (unsigned long long)t->offset, (unsigned long long)t->nbytes, (unsigned long long)g->size);
            return ds__fail(DS_ERR_BOUNDS, "gguf: tensor '%.*s': data ends at %llu, file has %llu bytes", n, t->name.ptr, (unsigned long long)e2, (unsigned long long)g->size);
        }
        t->data = g->base + g->data_offset + t->offset;
    }
    return DS_OK;
}

typedef struct ds__gguf_span { uint64_t begin, end; int64_t idx; } ds__gguf_span;
static int ds__gguf_span_cmp(const void *a, const void *b) {
    const ds__gguf_span *x = (const ds__gguf_span *)a, *y = (const ds__gguf_span *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* no two tensors share a byte: sort by offset and compare neighbours (empty tensors own none) */
static ds_status ds__gguf_check_overlap(ds_gguf *g) {
    ds__gguf_span *sp;
    int64_t i, n = 0;
    ds_status s = DS_OK;
    if (g->n_tensors < 2) return DS_OK;
    sp = DS__CAST(ds__gguf_span *, ds__calloc((size_t)g->n_tensors, sizeof *sp));
    if (!sp) return ds__fail(DS_ERR_NO_MEMORY, "gguf: out of memory checking %lld tensors", (long long)g->n_tensors);
    for (i = 0; i < g->n_tensors; i++) {
        if (!g->tensors[i].nbytes) continue;
        sp[n].begin = g->tensors[i].offset;
        sp[n].end = g->tensors[i].offset + g->tensors[i].nbytes;
        sp[n].idx = i;
        n++;
    }
    qsort(sp, (size_t)n, sizeof *sp, ds__gguf_span_cmp);
    for (i = 1; i < n && !s; i++) {
        if (sp[i].begin < sp[i - 1].end) {
            const ds_gguf_tensor *a = &g->tensors[sp[i - 1].idx], *b = &g->tensors[sp[i].idx];
            int na = a->name.len > DS__GGUF_NAME_SHOWN ? DS__GGUF_NAME_SHOWN : (int)a->name.len;
            int nb = b->name.len > DS__GGUF_NAME_SHOWN ? DS__GGUF_NAME_SHOWN : (int)b->name.len;
            s = ds__fail(DS_ERR_FORMAT, "gguf: tensors '%.*s' [%llu, %llu) and '%.*s' [%llu, %llu) overlap", na, a->name.ptr, (unsigned long long)sp[i - 1].begin,
                         (unsigned long long)sp[i - 1].end, nb, b->name.ptr, (unsigned long long)sp[i].begin, (unsigned long long)sp[i].end);
        }
    }
    ds_free(sp);
    return s;
}

static ds_status ds__gguf_read_header(ds_gguf *g, ds__gguf_cur *c) {
    uint64_t nt, nk;
    uint32_t v;
    ds_status s;
    snprintf(c->what, sizeof c->what, "header");
    if ((s = ds__gguf_need(c, 4, "magic"))) return s;
    if (memcmp(c->base, "GGUF", 4) != 0)
        return ds__fail(DS_ERR_FORMAT, "gguf: bad magic %02x %02x %02x %02x (expected 'GGUF')", c->base[0], c->base[1], c->base[2], c->base[3]);
    c->pos = 4;
    if ((s = ds__gguf_read_u32(c, "version", &v))) return s;
    if (v > 0xffff && (v & 0xffff) == 0) return ds__fail(DS_ERR_UNSUPPORTED, "gguf: big-endian file (version reads as 0x%08x); only little-endian GGUF is supported", v);
    if (v == 1) return ds__fail(DS_ERR_UNSUPPORTED, "gguf: version 1 is not supported (only 2 and 3)");
    if (v != 2 && v != 3) return ds__fail(DS_ERR_UNSUPPORTED, "gguf: unknown version %u (only 2 and 3 are supported)", v);
    if ((s = ds__gguf_read_u64(c, "tensor count", &nt)) || (s = ds__gguf_read_u64(c, "key-value count", &nk))) return s;
    if (nt > (uint64_t)INT64_MAX || nk > (uint64_t)INT64_MAX)
        return ds__fail(DS_ERR_BOUNDS, "gguf: header claims %llu tensors and %llu key-value pairs in a file of %llu bytes", (unsigned long long)nt, (unsigned long long)nk, (unsigned long long)c->size);
    g->version = v;
    g->n_tensors = (int64_t)nt;
    g->n_kv = (int64_t)nk;
    return DS_OK;
}

static ds_status ds__gguf_parse(ds_gguf *g) {
    ds__gguf_cur c;
    ds_status s;
    memset(&c, 0, sizeof c);
    c.base = g->base;
    c.size = g->size;
    if ((s = ds__gguf_read_header(g, &c))) return s;
    if ((s = ds__gguf_read_kvs(g, &c))) return s;
    if ((s = ds__gguf_read_alignment(g))) return s;
    if ((s = ds__gguf_read_tensor_infos(g, &c))) return s;
    g->data_offset = c.pos + (g->alignment - c.pos % g->alignment) % g->alignment;
    if ((s = ds__gguf_place_tensors(g))) return s;
    return ds__gguf_check_overlap(g);
}

DS_API ds_status ds_gguf_open_memory(const void *data, size_t size, ds_gguf **out) {
    ds_gguf *g;
    ds_status s;
    if (!out) return ds__fail(DS_ERR_INVALID_ARG, "gguf: NULL out");
    *out = NULL;
    if (!data && size) return ds__fail(DS_ERR_INVALID_ARG, "gguf: NULL data");
    g = DS__CAST(ds_gguf *, ds__calloc(1, sizeof *g));
    if (!g) return ds__fail(DS_ERR_NO_MEMORY, "gguf: out of memory");
    g->base = data ? (const uint8_t *)data : (const uint8_t *)"";
    g->size = size;
    s = ds__gguf_parse(g);
    if (s) {
        ds_gguf_close(g);
        return s;
    }
    *out = g;
    return DS_OK;
}

DS_API ds_status ds_gguf_open(const char *path, ds_gguf **out) {
    ds_mapped_file m;
    ds_status s;
    if (!out || !path) return ds__fail(DS_ERR_INVALID_ARG, "gguf: NULL argument");
    *out = NULL;
    if ((s = ds_map_file(path, &m))) return s;
    if ((s = ds_gguf_open_memory(m.data, m.size, out))) {
        ds_unmap_file(&m);
        return s;
    }
    (*out)->map = m;
    return DS_OK;
}

DS_API void ds_gguf_close(ds_gguf *g) {
    if (!g) return;
    ds__gguf_index_free(&g->kv_index);
    ds__gguf_index_free(&g->tensor_index);
    ds_free(g->kv);
    ds_free(g->tensors);
    ds_unmap_file(&g->map);
    ds_free(g);
}

DS_API uint32_t ds_gguf_version(const ds_gguf *g) { return g->version; }
DS_API uint32_t ds_gguf_alignment(const ds_gguf *g) { return g->alignment; }
DS_API uint64_t ds_gguf_data_offset(const ds_gguf *g) { return g->data_offset; }
DS_API uint64_t ds_gguf_file_size(const ds_gguf *g) { return g->size; }
DS_API int64_t ds_gguf_n_kv(const ds_gguf *g) { return g->n_kv; }
DS_API const ds_gguf_kv *ds_gguf_kv_at(const ds_gguf *g, int64_t i) { return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL; }
DS_API int64_t ds_gguf_n_tensors(const ds_gguf *g) { return g->n_tensors; }
DS_API const ds_gguf_tensor *ds_gguf_tensor_at(const ds_gguf *g, int64_t i) { return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL; }

DS_API const ds_gguf_kv *ds_gguf_find(const ds_gguf *g, const char *key) {
    int64_t i;
    if (!g || !key) return NULL;
    i = ds__gguf_index_find(&g->kv_index, key, strlen(key), ds__gguf_kv_key, g);
    return i < 0 ? NULL : &g->kv[i];
}
DS_API const ds_gguf_tensor *ds_gguf_find_tensor(const ds_gguf *g, const char *name) {
    int64_t i;
    if (!g || !name) return NULL;
    i = ds__gguf_index_find(&g->tensor_index, name, strlen(name), ds__gguf_tensor_name, g);
    return i < 0 ? NULL : &g->tensors[i];
}

/* the key's pair, or DS_ERR_NOT_FOUND */
static ds_status ds__gguf_lookup(const ds_gguf *g, const char *key, const ds_gguf_kv **kv) {
    if (!g || !key) return ds__fail(DS_ERR_INVALID_ARG, "gguf: NULL argument");
    *kv = ds_gguf_find(g, key);
    if (!*kv) return ds__fail(DS_ERR_NOT_FOUND, "gguf: no key '%s'", key);
    return DS_OK;
}
static ds_status ds__gguf_wrong_type(const char *key, const ds_gguf_kv *kv, const char *wanted) {
    return ds__fail(DS_ERR_TYPE, "gguf: key '%s' holds %s, not %s", key, ds_gguf_type_name(kv->type), wanted);
}

/* an integer value as sign and magnitude (negative values: mag = -v as unsigned) */
static int ds__gguf_int_value(const ds_gguf_kv *kv, int *neg, uint64_t *mag) {
    int64_t sv;
    const uint8_t *p = kv->data;
    switch (kv->type) {
    case DS_GGUF_U8: *neg = 0; *mag = p[0]; return 1;
    case DS_GGUF_U16: *neg = 0; *mag = (uint64_t)p[0] | (uint64_t)p[1] << 8; return 1;
    case DS_GGUF_U32: *neg = 0; *mag = ds__gguf_u32(p); return 1;
    case DS_GGUF_U64: *neg = 0; *mag = ds__gguf_u64(p); return 1;
    case DS_GGUF_I8: sv = (int8_t)p[0]; break;
    case DS_GGUF_I16: sv = (int16_t)(uint16_t)(p[0] | p[1] << 8); break;
    case DS_GGUF_I32: sv = (int32_t)ds__gguf_u32(p); break;
    case DS_GGUF_I64: sv = (int64_t)ds__gguf_u64(p); break;
    default: return 0;
    }
    *neg = sv < 0;
    *mag = sv < 0 ? (uint64_t)0 - (uint64_t)sv : (uint64_t)sv;
    return 1;
}

/* an integer key whose value lies in [-neg_max, pos_max] */
static ds_status ds__gguf_get_int(const ds_gguf *g, const char *key, uint64_t neg_max, uint64_t pos_max, const char *wanted, int *neg, uint64_t *mag) {
    const ds_gguf_kv *kv;
    ds_status s = ds__gguf_lookup(g, key, &kv);
    if (s) return s;
    if (!ds__gguf_int_value(kv, neg, mag)) return ds__gguf_wrong_type(key, kv, wanted);
    if (*neg ? *mag > neg_max : *mag > pos_max)
        return ds__fail(DS_ERR_TYPE, "gguf: key '%s': value %s%llu does not fit %s", key, *neg ? "-" : "", (unsigned long long)*mag, wanted);
    return DS_OK;
}

DS_API ds_status ds_gguf_get_u32(const ds_gguf *g, const char *key, uint32_t *out) {
    int neg;
    uint64_t m;
    ds_status s = ds__gguf_get_int(g, key, 0, UINT32_MAX, "u32", &neg, &m);
    if (!s && out) *out = (uint32_t)m;
    return s;
}
DS_API ds_status ds_gguf_get_i32(const ds_gguf *g, const char *key, int32_t *out) {
    int neg;
    uint64_t m;
    ds_status s = ds__gguf_get_int(g, key, (uint64_t)INT32_MAX + 1, INT32_MAX, "i32", &neg, &m);
    if (!s && out) *out = neg ? (int32_t)(-(int64_t)m) : (int32_t)m;
    return s;
}
DS_API ds_status ds_gguf_get_u64(const ds_gguf *g, const char *key, uint64_t *out) {
    int neg;
    uint64_t m;
    ds_status s = ds__gguf_get_int(g, key, 0, UINT64_MAX, "u64", &neg, &m);
    if (!s && out) *out = m;
    return s;
}
DS_API ds_status ds_gguf_get_i64(const ds_gguf *g, const char *key, int64_t *out) {
    int neg;
    uint64_t m;
    ds_status s = ds__gguf_get_int(g, key, (uint64_t)INT64_MAX + 1, INT64_MAX, "i64", &neg, &m);
    if (!s && out) *out = neg ? (int64_t)(0 - m) : (int64_t)m;
    return s;
}

DS_API ds_status ds_gguf_get_f64(const ds_gguf *g, const char *key, double *out) {
    const ds_gguf_kv *kv;
    ds_status s = ds__gguf_lookup(g, key, &kv);
    if (s) return s;
    if (kv->type == DS_GGUF_F32) {
        uint32_t u = ds__gguf_u32(kv->data);
        float f;
        memcpy(&f, &u, 4);
        if (out) *out = f;
    } else if (kv->type == DS_GGUF_F64) {
        uint64_t u = ds__gguf_u64(kv->data);
        double d;
        memcpy(&d, &u, 8);
        if (out) *out = d;
    } else {
        return ds__gguf_wrong_type(key, kv, "f32 or f64");
    }
    return DS_OK;
}
DS_API ds_status ds_gguf_get_f32(const ds_gguf *g, const char *key, float *out) {
    double d = 0;
    ds_status s = ds_gguf_get_f64(g, key, &d);
    if (!s && out) *out = (float)d;
    return s;
}

DS_API ds_status ds_gguf_get_bool(const ds_gguf *g, const char *key, int *out) {
    const ds_gguf_kv *kv;
    ds_status s = ds__gguf_lookup(g, key, &kv);
    if (s) return s;
    if (kv->type != DS_GGUF_BOOL) return ds__gguf_wrong_type(key, kv, "bool");
    if (out) *out = kv->data[0];
    return DS_OK;
}

/* the string encoded at p (validated when the file was opened) */
static ds_str ds__gguf_str_at(const uint8_t *p) {
    ds_str r;
    r.len = (size_t)ds__gguf_u64(p);
    r.ptr = (const char *)(p + 8);
    return r;
}

DS_API ds_status ds_gguf_get_str(const ds_gguf *g, const char *key, ds_str *out) {
    const ds_gguf_kv *kv;
    ds_status s = ds__gguf_lookup(g, key, &kv);
    if (s) return s;
    if (kv->type != DS_GGUF_STRING) return ds__gguf_wrong_type(key, kv, "string");
    if (out) *out = ds__gguf_str_at(kv->data);
    return DS_OK;
}

DS_API ds_status ds_gguf_get_arr(const ds_gguf *g, const char *key, ds_gguf_type *elem, uint64_t *n, const void **data) {
    const ds_gguf_kv *kv;
    ds_status s = ds__gguf_lookup(g, key, &kv);
    if (s) return s;
    if (kv->type != DS_GGUF_ARRAY) return ds__gguf_wrong_type(key, kv, "array");
    if (elem) *elem = kv->arr_type;
    if (n) *n = kv->arr_len;
    if (data) *data = kv->data;
    return DS_OK;
}

DS_API ds_status ds_gguf_get_arr_str(const ds_gguf *g, const char *key, ds_str *out, uint64_t n) {
    const ds_gguf_kv *kv;
    const uint8_t *p;
    uint64_t i;
    ds_status s = ds__gguf_lookup(g, key, &kv);
    if (s) return s;
    if (kv->type != DS_GGUF_ARRAY || kv->arr_type != DS_GGUF_STRING) return ds__gguf_wrong_type(key, kv, "array of strings");
    if (n != kv->arr_len || (n && !out))
        return ds__fail(DS_ERR_INVALID_ARG, "gguf: key '%s' has %llu strings, caller asked for %llu", key, (unsigned long long)kv->arr_len, (unsigned long long)n);
    for (p = kv->data, i = 0; i < n; i++) {
        out[i] = ds__gguf_str_at(p);
        p += 8 + out[i].len;
    }
    return DS_OK;
}

/* ---- writer ---------------------------------------------------------------------------- */
/* A KV holds its value already encoded as it goes after the type id in the file. */
typedef struct ds__gguf_wkv {
    char *key;
    size_t key_len;
    ds_gguf_type type;
    uint8_t *val;
    size_t len;
} ds__gguf_wkv;
typedef struct ds__gguf_wtensor {
    char *name;
    size_t name_len;
    ds_type type;
    int n_dims;
    int64_t ne[4];
    const void *data;
    uint64_t nbytes, offset;
} ds__gguf_wtensor;
struct ds_gguf_writer {
    ds__gguf_wkv *kv;
    size_t n_kv, cap_kv;
    ds__gguf_wtensor *t;
    size_t n_t, cap_t;
    ds__gguf_index kv_index, t_index;
};
#define DS__GGUF_MAX_NAME 63   /* longest tensor name llama.cpp accepts */

static ds_str ds__gguf_wkv_key(const void *w, int64_t i) {
    const ds__gguf_wkv *kv = &((const ds_gguf_writer *)w)->kv[i];
    ds_str s;
    s.ptr = kv->key;
    s.len = kv->key_len;
    return s;
}
static ds_str ds__gguf_wtensor_name(const void *w, int64_t i) {
    const ds__gguf_wtensor *t = &((const ds_gguf_writer *)w)->t[i];
    ds_str s;
    s.ptr = t->name;
    s.len = t->name_len;
    return s;
}

/* p (n items of elem bytes, capacity *cap) with room for one more: p itself or a larger copy;
   NULL when out of memory (p is then untouched) */
static void *ds__gguf_grow(void *p, size_t *cap, size_t n, size_t elem) {
    size_t nc = *cap ? *cap * 2 : 16;
    void *np;
    if (n < *cap) return p;
    np = ds__calloc(nc, elem);
    if (!np) return NULL;
    if (p) memcpy(np, p, n * elem);
    ds_free(p);
    *cap = nc;
    return np;
}

/* makes room in a name index for one more of n items, rebuilding it larger when half full */
static ds_status ds__gguf_index_reserve(ds__gguf_index *ix, size_t n, ds__gguf_key_fn key_at, const void *owner) {
    ds__gguf_index nix;
    size_t i;
    ds_status s;
    if (ix->slot && (uint64_t)(n + 1) * 2 <= ix->mask + 1) return DS_OK;
    if ((s = ds__gguf_index_alloc(&nix, (uint64_t)(n + 1) * 2))) return s;
    for (i = 0; i < n; i++) {
        ds_str k = key_at(owner, (int64_t)i);
        ds__gguf_index_put(&nix, k.ptr, k.len, (int64_t)i);
    }
    ds__gguf_index_free(ix);
    *ix = nix;
    return DS_OK;
}

DS_API ds_status ds_gguf_writer_create(ds_gguf_writer **out) {
    if (!out) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: NULL out");
    *out = DS__CAST(ds_gguf_writer *, ds__calloc(1, sizeof **out));
    return *out ? DS_OK : ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory");
}

DS_API void ds_gguf_writer_free(ds_gguf_writer *w) {
    size_t i;
    if (!w) return;
    for (i = 0; i < w->n_kv; i++) {
        ds_free(w->kv[i].key);
        ds_free(w->kv[i].val);
    }
    for (i = 0; i < w->n_t; i++) ds_free(w->t[i].name);
    ds_free(w->kv);
    ds_free(w->t);
    ds__gguf_index_free(&w->kv_index);
    ds__gguf_index_free(&w->t_index);
    ds_free(w);
}

/* sets key (key_len bytes) to an encoded value of len bytes, copying both */
static ds_status ds__gguf_writer_put(ds_gguf_writer *w, const char *key, size_t key_len, ds_gguf_type type, const uint8_t *val, size_t len) {
    uint8_t *v;
    int64_t i;
    ds_status s;
    v = DS__CAST(uint8_t *, ds_alloc(len));
    if (!v) return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory for key '%.*s' (%zu bytes)", (int)DS__MIN(key_len, 96), key, len);
    if (len) memcpy(v, val, len);
    i = ds__gguf_index_find(&w->kv_index, key, key_len, ds__gguf_wkv_key, w);
    if (i >= 0) {   /* replace, keeping its place */
        ds_free(w->kv[i].val);
        w->kv[i].type = type;
        w->kv[i].val = v;
        w->kv[i].len = len;
        return DS_OK;
    }
    if ((s = ds__gguf_index_reserve(&w->kv_index, w->n_kv, ds__gguf_wkv_key, w))) {
        ds_free(v);
        return s;
    }
    {
        ds__gguf_wkv *kv = DS__CAST(ds__gguf_wkv *, ds__gguf_grow(w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv));
        if (!kv) {
            ds_free(v);
            return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory");
        }
        w->kv = kv;
        kv += w->n_kv;
        kv->key = DS__CAST(char *, ds_alloc(key_len + 1));
        if (!kv->key) {
            ds_free(v);
            return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory");
        }
        memcpy(kv->key, key, key_len);
        kv->key[key_len] = 0;
        kv->key_len = key_len;
        kv->type = type;
        kv->val = v;
        kv->len = len;
    }
    ds__gguf_index_put(&w->kv_index, key, key_len, (int64_t)w->n_kv);
    w->n_kv++;
    return DS_OK;
}

static void ds__gguf_enc32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static void ds__gguf_enc64(uint8_t *p, uint64_t v) {
    ds__gguf_enc32(p, (uint32_t)v);
    ds__gguf_enc32(p + 4, (uint32_t)(v >> 32));
}

static ds_status ds__gguf_writer_check(const ds_gguf_writer *w, const char *key) {
    if (!w || !key) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: NULL argument");
    return DS_OK;
}

DS_API ds_status ds_gguf_writer_set_scalar(ds_gguf_writer *w, const char *key, ds_gguf_type type, const void *value) {
    size_t n = ds__gguf_scalar_size((uint32_t)type);
    uint8_t v[8];
    ds_status s = ds__gguf_writer_check(w, key);
    if (s) return s;
    if (!n || !value) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: key '%s': %s is not a scalar type", key, ds_gguf_type_name(type));
    memcpy(v, value, n);
    if (type == DS_GGUF_BOOL) v[0] = v[0] != 0;
    return ds__gguf_writer_put(w, key, strlen(key), type, v, n);
}
DS_API ds_status ds_gguf_writer_set_u32(ds_gguf_writer *w, const char *key, uint32_t v) {
    uint8_t b[4];
    ds__gguf_enc32(b, v);
    return ds_gguf_writer_set_scalar(w, key, DS_GGUF_U32, b);
}
DS_API ds_status ds_gguf_writer_set_i32(ds_gguf_writer *w, const char *key, int32_t v) {
    uint8_t b[4];
    ds__gguf_enc32(b, (uint32_t)v);
    return ds_gguf_writer_set_scalar(w, key, DS_GGUF_I32, b);
}
DS_API ds_status ds_gguf_writer_set_u64(ds_gguf_writer *w, const char *key, uint64_t v) {
    uint8_t b[8];
    ds__gguf_enc64(b, v);
    return ds_gguf_writer_set_scalar(w, key, DS_GGUF_U64, b);
}
DS_API ds_status ds_gguf_writer_set_i64(ds_gguf_writer *w, const char *key, int64_t v) {
    uint8_t b[8];
    ds__gguf_enc64(b, (uint64_t)v);
    return ds_gguf_writer_set_scalar(w, key, DS_GGUF_I64, b);
}
DS_API ds_status ds_gguf_writer_set_f32(ds_gguf_writer *w, const char *key, float v) {
    uint32_t u;
    uint8_t b[4];
    memcpy(&u, &v, 4);
    ds__gguf_enc32(b, u);
    return ds_gguf_writer_set_scalar(w, key, DS_GGUF_F32, b);
}
DS_API ds_status ds_gguf_writer_set_f64(ds_gguf_writer *w, const char *key, double v) {
    uint64_t u;
    uint8_t b[8];
    memcpy(&u, &v, 8);
    ds__gguf_enc64(b, u);
    return ds_gguf_writer_set_scalar(w, key, DS_GGUF_F64, b);
}
DS_API ds_status ds_gguf_writer_set_bool(ds_gguf_writer *w, const char *key, int v) {
    uint8_t b = v != 0;
    return ds_gguf_writer_set_scalar(w, key, DS_GGUF_BOOL, &b);
}

DS_API ds_status ds_gguf_writer_set_str(ds_gguf_writer *w, const char *key, const char *v) {
    size_t n;
    uint8_t *buf;
    ds_status s = ds__gguf_writer_check(w, key);
    if (s) return s;
    if (!v) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: key '%s': NULL string", key);
    n = strlen(v);
    buf = DS__CAST(uint8_t *, ds_alloc(n + 8));
    if (!buf) return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory for key '%s'", key);
    ds__gguf_enc64(buf, n);
    memcpy(buf + 8, v, n);
    s = ds__gguf_writer_put(w, key, strlen(key), DS_GGUF_STRING, buf, n + 8);
    ds_free(buf);
    return s;
}

DS_API ds_status ds_gguf_writer_set_arr(ds_gguf_writer *w, const char *key, ds_gguf_type elem, const void *data, uint64_t n) {
    size_t esize = ds__gguf_scalar_size((uint32_t)elem), bytes, i;
    uint8_t *buf;
    ds_status s = ds__gguf_writer_check(w, key);
    if (s) return s;
    if (!esize) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: key '%s': %s arrays need ds_gguf_writer_set_arr_str or are not supported", key, ds_gguf_type_name(elem));
    if (n && !data) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: key '%s': NULL data", key);
    if (n > (SIZE_MAX - 12) / esize) return ds__fail(DS_ERR_OVERFLOW, "gguf writer: key '%s': %llu elements overflow a size", key, (unsigned long long)n);
    bytes = (size_t)n * esize;
    buf = DS__CAST(uint8_t *, ds_alloc(bytes + 12));
    if (!buf) return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory for key '%s' (%zu bytes)", key, bytes);
    ds__gguf_enc32(buf, (uint32_t)elem);
    ds__gguf_enc64(buf + 4, n);
    if (bytes) memcpy(buf + 12, data, bytes);
    if (elem == DS_GGUF_BOOL)
        for (i = 0; i < bytes; i++) buf[12 + i] = buf[12 + i] != 0;
    s = ds__gguf_writer_put(w, key, strlen(key), DS_GGUF_ARRAY, buf, bytes + 12);
    ds_free(buf);
    return s;
}

DS_API ds_status ds_gguf_writer_set_arr_str(ds_gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    size_t bytes = 12, i, at;
    uint8_t *buf;
    ds_status s = ds__gguf_writer_check(w, key);
    if (s) return s;
    if (n && !strs) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: key '%s': NULL strings", key);
    if (n > SIZE_MAX / 8) return ds__fail(DS_ERR_OVERFLOW, "gguf writer: key '%s': %llu strings overflow a size", key, (unsigned long long)n);
    for (i = 0; i < (size_t)n; i++) {
        size_t len;
        if (!strs[i]) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: key '%s': string %zu is NULL", key, i);
        len = strlen(strs[i]);
        if (len > SIZE_MAX - 8 - bytes) return ds__fail(DS_ERR_OVERFLOW, "gguf writer: key '%s': strings overflow a size", key);
        bytes += 8 + len;
    }
    buf = DS__CAST(uint8_t *, ds_alloc(bytes));
    if (!buf) return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory for key '%s' (%zu bytes)", key, bytes);
    ds__gguf_enc32(buf, DS_GGUF_STRING);
    ds__gguf_enc64(buf + 4, n);
    for (at = 12, i = 0; i < (size_t)n; i++) {
        size_t len = strlen(strs[i]);
        ds__gguf_enc64(buf + at, len);
        memcpy(buf + at + 8, strs[i], len);
        at += 8 + len;
    }
    s = ds__gguf_writer_put(w, key, strlen(key), DS_GGUF_ARRAY, buf, bytes);
    ds_free(buf);
    return s;
}

/* where a read KV's encoded value starts (after its type id) and how many bytes it spans */
static const uint8_t *ds__gguf_kv_encoded(const ds_gguf_kv *kv, size_t *len) {
    if (kv->type == DS_GGUF_STRING) {
        *len = 8 + ds__gguf_str_at(kv->data).len;
        return kv->data;
    }
    if (kv->type != DS_GGUF_ARRAY) {
        *len = ds__gguf_scalar_size(kv->type);
        return kv->data;
    }
    if (kv->arr_type == DS_GGUF_STRING) {
        const uint8_t *p = kv->data;
        uint64_t i;
        for (i = 0; i < kv->arr_len; i++) p += 8 + ds__gguf_str_at(p).len;
        *len = (size_t)(p - kv->data) + 12;
    } else {
        *len = (size_t)kv->arr_len * ds__gguf_scalar_size(kv->arr_type) + 12;
    }
    return kv->data - 12;
}

DS_API ds_status ds_gguf_writer_copy_kv(ds_gguf_writer *w, const ds_gguf *g) {
    int64_t i;
    if (!w || !g) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: NULL argument");
    for (i = 0; i < g->n_kv; i++) {
        const ds_gguf_kv *kv = &g->kv[i];
        size_t len;
        const uint8_t *val = ds__gguf_kv_encoded(kv, &len);
        ds_status s = ds__gguf_writer_put(w, kv->key.ptr, kv->key.len, kv->type, val, len);
        if (s) return s;
    }
    return DS_OK;
}

/* the element count of a shape, checked */
static ds_status ds__gguf_shape_elems(const char *name, int n_dims, const int64_t *ne, int64_t *out) {
    int d;
    int64_t n = 1;
    if (n_dims < 1 || n_dims > 4 || !ne) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: tensor '%s': n_dims %d is not 1..4", name, n_dims);
    for (d = 0; d < n_dims; d++) {
        if (ne[d] < 0) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: tensor '%s': dimension %d is negative", name, d);
        if (ne[d] && n > INT64_MAX / ne[d]) return ds__fail(DS_ERR_OVERFLOW, "gguf writer: tensor '%s': element count overflows", name);
        n *= ne[d];
    }
    *out = n;
    return DS_OK;
}

DS_API ds_status ds_gguf_writer_add_tensor(ds_gguf_writer *w, const char *name, ds_type type, int n_dims, const int64_t *ne, const void *data) {
    ds__gguf_wtensor *t;
    int64_t n_elems = 0;
    uint64_t nbytes = 0;
    size_t len;
    int d;
    ds_status s;
    if (!w || !name) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: NULL argument");
    len = strlen(name);
    if (len > DS__GGUF_MAX_NAME) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: tensor '%.64s...': name longer than %d bytes", name, DS__GGUF_MAX_NAME);
    if ((unsigned)type >= DS_TYPE_COUNT_ || !ds_type_block_elems(type)) return ds__fail(DS_ERR_TYPE, "gguf writer: tensor '%s': unknown type id %d", name, (int)type);
    if ((s = ds__gguf_shape_elems(name, n_dims, ne, &n_elems))) return s;
    if (ne[0] % (int64_t)ds_type_block_elems(type))
        return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: tensor '%s': row of %lld elements is not whole %s blocks", name, (long long)ne[0], ds_type_name(type));
    if ((s = ds_type_nbytes(type, n_elems, &nbytes))) return s;
    if (nbytes && !data) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: tensor '%s': NULL data", name);
    if (ds__gguf_index_find(&w->t_index, name, len, ds__gguf_wtensor_name, w) >= 0) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: tensor '%s' added twice", name);
    if ((s = ds__gguf_index_reserve(&w->t_index, w->n_t, ds__gguf_wtensor_name, w))) return s;
    t = DS__CAST(ds__gguf_wtensor *, ds__gguf_grow(w->t, &w->cap_t, w->n_t, sizeof *w->t));
    if (!t) return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory");
    w->t = t;
    t += w->n_t;
    memset(t, 0, sizeof *t);
    if (!(t->name = ds__strdup(name))) return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory");
    t->name_len = len;
    t->type = type;
    t->n_dims = n_dims;
    for (d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    t->nbytes = nbytes;
    ds__gguf_index_put(&w->t_index, name, len, (int64_t)w->n_t);
    w->n_t++;
    return DS_OK;
}

/* ---- writing the file: a FILE with a sticky error flag ---- */
typedef struct ds__gguf_out {
    FILE *f;
    uint64_t pos;
    int failed;
} ds__gguf_out;

static void ds__gguf_emit(ds__gguf_out *o, const void *p, uint64_t n) {
    const uint8_t *b = (const uint8_t *)p;
    while (n && !o->failed) {   /* chunks, so sizes beyond size_t on 32-bit hosts still work */
        size_t k = (size_t)DS__MIN(n, (uint64_t)1 << 30);
        if (fwrite(b, 1, k, o->f) != k) o->failed = 1;
        b += k;
        n -= k;
        o->pos += k;
    }
}
static void ds__gguf_emit32(ds__gguf_out *o, uint32_t v) {
    uint8_t b[4];
    ds__gguf_enc32(b, v);
    ds__gguf_emit(o, b, 4);
}
static void ds__gguf_emit64(ds__gguf_out *o, uint64_t v) {
    uint8_t b[8];
    ds__gguf_enc64(b, v);
    ds__gguf_emit(o, b, 8);
}
static void ds__gguf_emit_str(ds__gguf_out *o, const char *s, size_t n) {
    ds__gguf_emit64(o, n);
    ds__gguf_emit(o, s, n);
}
static void ds__gguf_pad(ds__gguf_out *o, uint32_t align) {
    static const uint8_t zeros[64] = {0};
    while (o->pos % align) ds__gguf_emit(o, zeros, DS__MIN(align - o->pos % align, (uint64_t)sizeof zeros));
}

/* general.alignment as the writer will apply it */
static ds_status ds__gguf_writer_alignment(const ds_gguf_writer *w, uint32_t *align) {
    int64_t i = ds__gguf_index_find(&w->kv_index, "general.alignment", 17, ds__gguf_wkv_key, w);
    *align = DS__GGUF_DEFAULT_ALIGN;
    if (i < 0) return DS_OK;
    if (w->kv[i].type != DS_GGUF_U32) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: general.alignment must be a u32, not %s", ds_gguf_type_name(w->kv[i].type));
    *align = ds__gguf_u32(w->kv[i].val);
    if (*align == 0 || (*align & (*align - 1))) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: general.alignment %u is not a power of two", *align);
    return DS_OK;
}

static void ds__gguf_writer_emit(ds_gguf_writer *w, ds__gguf_out *o, uint32_t align) {
    size_t i;
    uint64_t off = 0;
    int d;
    ds__gguf_emit(o, "GGUF", 4);
    ds__gguf_emit32(o, 3);
    ds__gguf_emit64(o, w->n_t);
    ds__gguf_emit64(o, w->n_kv);
    for (i = 0; i < w->n_kv; i++) {
        ds__gguf_emit_str(o, w->kv[i].key, w->kv[i].key_len);
        ds__gguf_emit32(o, (uint32_t)w->kv[i].type);
        ds__gguf_emit(o, w->kv[i].val, w->kv[i].len);
    }
    for (i = 0; i < w->n_t; i++) {
        ds__gguf_wtensor *t = &w->t[i];
        ds__gguf_emit_str(o, t->name, t->name_len);
        ds__gguf_emit32(o, (uint32_t)t->n_dims);
        for (d = 0; d < t->n_dims; d++) ds__gguf_emit64(o, (uint64_t)t->ne[d]);
        ds__gguf_emit32(o, (uint32_t)t->type);
        ds__gguf_emit64(o, off);
        t->offset = off;
        off += t->nbytes + (align - t->nbytes % align) % align;
    }
    ds__gguf_pad(o, align);
    for (i = 0; i < w->n_t; i++) {
        ds__gguf_emit(o, w->t[i].data, w->t[i].nbytes);
        ds__gguf_pad(o, align);
    }
}

/* makes a finished file durable: its bytes, then (after the rename) its folder entry */
static int ds__gguf_sync_file(FILE *f) {
    if (fflush(f) != 0) return 0;
#if defined(_WIN32)
    return 1;
#else
    return fsync(fileno(f)) == 0;
#endif
}
static void ds__gguf_sync_dir(const char *path) {
#if !defined(_WIN32)
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    int fd;
    if (n >= sizeof dir) return;
    if (slash) {
        memcpy(dir, path, n ? n : 1);
        dir[n ? n : 1] = 0;
    } else {
        strcpy(dir, ".");
    }
    fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
#else
    (void)path;
#endif
}
static int ds__gguf_replace(const char *from, const char *to) {
#if defined(_WIN32)
    return MoveFileExA(from, to, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) != 0;
#else
    return rename(from, to) == 0;
#endif
}

DS_API ds_status ds_gguf_writer_write(ds_gguf_writer *w, const char *path) {
    ds__gguf_out o;
    uint32_t align;
    size_t n;
    char *tmp;
    ds_status s;
    int ok;
    if (!w || !path) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: NULL argument");
    if ((s = ds__gguf_writer_alignment(w, &align))) return s;
    n = strlen(path);
    tmp = DS__CAST(char *, ds_alloc(n + 5));
    if (!tmp) return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory");
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    memset(&o, 0, sizeof o);
    o.f = fopen(tmp, "wb");
    if (!o.f) {
        s = ds__fail(DS_ERR_IO, "gguf writer: cannot create '%s': %s", tmp, strerror(errno));
        ds_free(tmp);
        return s;
    }
    ds__gguf_writer_emit(w, &o, align);
    ok = !o.failed && ds__gguf_sync_file(o.f);
    ok = fclose(o.f) == 0 && ok;
    if (!ok) {
        s = ds__fail(DS_ERR_IO, "gguf writer: writing '%s' failed at byte %llu: %s", tmp, (unsigned long long)o.pos, strerror(errno));
        remove(tmp);
    } else if (!ds__gguf_replace(tmp, path)) {
        s = ds__fail(DS_ERR_IO, "gguf writer: cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        remove(tmp);
    } else {
        ds__gguf_sync_dir(path);
    }
    ds_free(tmp);
    return s;
}

// >>tokenizer

// >>model

// >>infer

// >>train

#ifdef __cplusplus
}
#endif
#endif /* DEEPSEEK_IMPLEMENTATION */

/*
------------------------------------------------------------------------------------------------
LICENSE: this software is available under either of two licenses, at your choice.
A - MIT License. Copyright (c) 2026 the deepseek.h authors.
Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions: The above copyright notice
and this permission notice shall be included in all copies or substantial portions of the
Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
B - Public Domain (www.unlicense.org). Anyone is free to copy, modify, publish, use, compile,
sell, or distribute this software, for any purpose, commercial or non-commercial, and by any
means.
------------------------------------------------------------------------------------------------
*/
