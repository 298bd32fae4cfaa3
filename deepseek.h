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
    /* YaRN RoPE scaling of MLA layers (0: off) */
    float rope_yarn_factor;
    int rope_yarn_orig_ctx;
    float rope_yarn_log_mul;
    int mla_kv_b_split;   /* deepseek2 files: attn_k_b + attn_v_b instead of attn_kv_b */
} ds_model_config;

// >>api:deepseek
/* ---- DeepSeek architecture: Multi-head Latent Attention and DeepSeekMoE ----------------------
   A layer whose config says DS_ATTN_MLA uses MLA: queries through an optional low-rank
   bottleneck (q_lora_rank), keys and values compressed into one kv_lora_rank latent per token
   plus one shared RoPE key of qk_rope_dim; only these two are cached (the latent, normed, and the
   rotated key), and decoding attends in latent space with the key and value up-projections
   absorbed into the query and the output. A layer with DS_FFN_MOE routes each token to
   n_expert_used of n_expert SwiGLU experts (softmax or sigmoid gating, an optional selection
   bias used only to choose, group-limited routing, renormalised weights, routed_scale) and
   adds n_expert_shared always-on experts. Files use llama.cpp's deepseek2 layout. */

/* Errors (DS_ERR_INVALID_ARG) name the first field the MLA or MoE layers cannot work with. */
DS_API ds_status ds_model_config_check_deepseek(const ds_model_config *c);
/* Writes the config's deepseek2 metadata (llama.cpp's key names) into w: every layer MLA,
   dense FFN layers first, MoE layers after (DS_ERR_UNSUPPORTED otherwise). */
DS_API ds_status ds_model_config_write_deepseek2(const ds_model_config *c, ds_gguf_writer *w);
/* KV-cache bytes one token takes over all layers with elem_size-byte elements: MLA layers
   cache kv_lora_rank + qk_rope_dim values, dense layers 2 * n_head_kv * head_dim. */
DS_API size_t ds_model_kv_bytes_per_token(const ds_model_config *c, size_t elem_size);

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

/* ---- f16 / bf16 conversions -------------------------------------------------------------- */
static DS__MAYBE_UNUSED uint32_t ds__f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static DS__MAYBE_UNUSED float ds__bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* IEEE binary16 -> binary32, exact for every pattern (subnormals normalised, NaN payload kept) */
static DS__MAYBE_UNUSED float ds__f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return ds__bits_f32(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        int ex = 1;
        if (m == 0) return ds__bits_f32(sign);
        while (!(m & 0x400u)) {
            m <<= 1;
            ex--;
        }
        return ds__bits_f32(sign | ((uint32_t)(ex + 112) << 23) | ((m & 0x3ffu) << 13));
    }
    return ds__bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

/* binary32 -> binary16, round to nearest even; NaN stays NaN (quietened, top payload bits kept,
   as the F16C instruction does) */
static DS__MAYBE_UNUSED uint16_t ds__f32_to_f16(float f) {
    uint32_t u = ds__f32_bits(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    uint32_t e = a >> 23, m = a & 0x7fffffu, h, rem;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((m >> 13) & 0x3ffu));
    if (a >= 0x47800000u) return (uint16_t)(sign | 0x7c00u); /* >= 2^16 (or inf): overflows */
    if (a < 0x38800000u) { /* below 2^-14: a half subnormal (or zero) */
        uint32_t shift = 126 - e, half;
        if (shift > 24) return (uint16_t)sign;
        m |= 0x800000u;
        h = m >> shift;
        rem = m & ((1u << shift) - 1);
        half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    h = ((e - 112) << 10) | (m >> 13);
    rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* a carry may reach inf: correct */
    return (uint16_t)(sign | h);
}

static DS__MAYBE_UNUSED float ds__bf16_to_f32(uint16_t b) { return ds__bits_f32((uint32_t)b << 16); }

/* round to nearest even; NaN is quietened so that truncation cannot turn it into inf */
static DS__MAYBE_UNUSED uint16_t ds__f32_to_bf16(float f) {
    uint32_t u = ds__f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* ---- quant block layouts (ggml's, byte for byte) ----------------------------------------- */
#define DS__QK 32    /* elements per Q4_0 / Q4_1 / Q8_0 / Q8_1 block */
#define DS__QK_K 256 /* elements per K-quant super-block */
typedef struct { uint16_t d; uint8_t qs[16]; } ds__block_q4_0;          /* x = d * (q - 8) */
typedef struct { uint16_t d, m; uint8_t qs[16]; } ds__block_q4_1;       /* x = d * q + m */
typedef struct { uint16_t d; int8_t qs[32]; } ds__block_q8_0;           /* x = d * q */
typedef struct { uint16_t d, s; int8_t qs[32]; } ds__block_q8_1;        /* s = d * sum(q) */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } ds__block_q4_k;
typedef struct { uint8_t ql[128], qh[64]; int8_t scales[16]; uint16_t d; } ds__block_q6_k;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } ds__block_q8_k;
/* compile-time size checks: a negative array size fails the build */
typedef char ds__check_block_sizes[(sizeof(ds__block_q4_0) == 18 && sizeof(ds__block_q4_1) == 20 &&
                                    sizeof(ds__block_q8_0) == 34 && sizeof(ds__block_q8_1) == 36 &&
                                    sizeof(ds__block_q4_k) == 144 && sizeof(ds__block_q6_k) == 210 &&
                                    sizeof(ds__block_q8_k) == 292) ? 1 : -1];

/* C's roundf (halves away from zero) without libm's rounding-mode subtleties */
static DS__MAYBE_UNUSED int ds__round_away(float v) {
    float t = (float)(int)v, r = v - t; /* exact: |v| < 2^23 here */
    if (r >= 0.5f) t += 1.0f;
    else if (r <= -0.5f) t -= 1.0f;
    return (int)t;
}
/* nearest integer, halves to even (|v| < 2^22) */
static DS__MAYBE_UNUSED int ds__round_even(float v) {
    float s = v + 12582912.0f; /* 1.5 * 2^23: the sum's low mantissa bits are the rounded integer */
    return (int)(ds__f32_bits(s) & 0x007fffffu) - 0x00400000;
}

/* ---- reference quantizers (ggml-compatible output) --------------------------------------- */
static void ds__quantize_q8_0(const float *x, ds__block_q8_0 *y, int64_t nb) {
    int64_t i;
    int j;
    for (i = 0; i < nb; i++, x += DS__QK) {
        float amax = 0.0f, d, id;
        for (j = 0; j < DS__QK; j++) amax = DS__MAX(amax, fabsf(x[j]));
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ds__f32_to_f16(d);
        for (j = 0; j < DS__QK; j++) y[i].qs[j] = (int8_t)ds__round_away(x[j] * id);
    }
}

static void ds__quantize_q8_1(const float *x, ds__block_q8_1 *y, int64_t nb) {
    int64_t i;
    int j;
    for (i = 0; i < nb; i++, x += DS__QK) {
        float amax = 0.0f, d, id;
        int sum = 0;
        for (j = 0; j < DS__QK; j++) amax = DS__MAX(amax, fabsf(x[j]));
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        for (j = 0; j < DS__QK; j++) {
            int q = ds__round_away(x[j] * id);
            y[i].qs[j] = (int8_t)q;
            sum += q;
        }
        y[i].d = ds__f32_to_f16(d);
        y[i].s = ds__f32_to_f16((float)sum * d);
    }
}

static void ds__quantize_q4_0(const float *x, ds__block_q4_0 *y, int64_t nb) {
    int64_t i;
    int j;
    for (i = 0; i < nb; i++, x += DS__QK) {
        float amax = 0.0f, max = 0.0f, d, id;
        for (j = 0; j < DS__QK; j++) { /* the signed value of largest magnitude (first one) */
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        d = max / -8.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ds__f32_to_f16(d);
        for (j = 0; j < DS__QK / 2; j++) {
            int q0 = DS__MIN(15, (int)(x[j] * id + 8.5f));
            int q1 = DS__MIN(15, (int)(x[j + DS__QK / 2] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void ds__quantize_q4_1(const float *x, ds__block_q4_1 *y, int64_t nb) {
    int64_t i;
    int j;
    for (i = 0; i < nb; i++, x += DS__QK) {
        float min = FLT_MAX, max = -FLT_MAX, d, id;
        for (j = 0; j < DS__QK; j++) {
            min = DS__MIN(min, x[j]);
            max = DS__MAX(max, x[j]);
        }
        d = (max - min) / 15.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ds__f32_to_f16(d);
        y[i].m = ds__f32_to_f16(min);
        for (j = 0; j < DS__QK / 2; j++) {
            int q0 = DS__MIN(15, (int)((x[j] - min) * id + 0.5f));
            int q1 = DS__MIN(15, (int)((x[j + DS__QK / 2] - min) * id + 0.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* Q8_K: the signed extreme maps to -127; block sums of 16 serve the K-quants' min terms */
static void ds__quantize_q8_k(const float *x, ds__block_q8_k *y, int64_t nb) {
    int64_t i;
    int j;
    for (i = 0; i < nb; i++, x += DS__QK_K) {
        float amax = 0.0f, max = 0.0f, iscale;
        for (j = 0; j < DS__QK_K; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (amax == 0.0f) continue;
        iscale = -127.0f / max;
        for (j = 0; j < DS__QK_K; j++) {
            int q = DS__MIN(127, ds__round_even(iscale * x[j]));
            y[i].qs[j] = (int8_t)q;
            y[i].bsums[j / 16] = (int16_t)(y[i].bsums[j / 16] + q);
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- dequantizers ------------------------------------------------------------------------ */
/* the 6-bit scale and min of sub-block j (0..7), packed in 12 bytes */
static void ds__q4_k_scale_min(const uint8_t *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static void ds__dequantize_q4_k(const ds__block_q4_k *b, float *y, int64_t nb) {
    int64_t i;
    int j, l;
    for (i = 0; i < nb; i++, b++) {
        float d = ds__f16_to_f32(b->d), dmin = ds__f16_to_f32(b->dmin);
        const uint8_t *q = b->qs;
        for (j = 0; j < 8; j += 2, q += 32) { /* 64 values: low nibbles, then high nibbles */
            int sc0, m0, sc1, m1;
            float d0, d1, n0, n1;
            ds__q4_k_scale_min(b->scales, j, &sc0, &m0);
            ds__q4_k_scale_min(b->scales, j + 1, &sc1, &m1);
            d0 = d * (float)sc0; n0 = dmin * (float)m0;
            d1 = d * (float)sc1; n1 = dmin * (float)m1;
            for (l = 0; l < 32; l++) *y++ = d0 * (float)(q[l] & 0xf) - n0;
            for (l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] >> 4) - n1;
        }
    }
}

/* the 6-bit value (minus 32) of element l + 32 * k of a 128-element half (k = 0..3) */
static DS__MAYBE_UNUSED int ds__q6_k_value(const uint8_t *ql, const uint8_t *qh, int l, int k) {
    int lo = (k & 1) ? ql[l + 32] : ql[l];
    lo = (k & 2) ? lo >> 4 : lo & 0xf;
    return (lo | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
}

static void ds__dequantize_q6_k(const ds__block_q6_k *b, float *y, int64_t nb) {
    int64_t i;
    int h, l, k;
    for (i = 0; i < nb; i++, b++) {
        float d = ds__f16_to_f32(b->d);
        for (h = 0; h < 2; h++) {
            const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
            const int8_t *sc = b->scales + 8 * h;
            for (k = 0; k < 4; k++)
                for (l = 0; l < 32; l++) y[128 * h + 32 * k + l] = d * (float)sc[l / 16 + 2 * k] * (float)ds__q6_k_value(ql, qh, l, k);
        }
        y += DS__QK_K;
    }
}

/* Bytes of one row of n elements (n a whole number of blocks: callers checked). */
static DS__MAYBE_UNUSED size_t ds__row_bytes(ds_type t, int64_t n) {
    ds__type_traits tr = ds__type_info(t);
    return tr.block_elems ? (size_t)(n / tr.block_elems) * tr.block_bytes : 0;
}

/* dst (n) = src (n elements of type t); n is a whole number of t's blocks */
static DS__MAYBE_UNUSED void ds__dequantize_row(ds_type t, const void *src, float *dst, int64_t n) {
    int64_t i, nb = n / (int64_t)DS__MAX(1, ds__type_info(t).block_elems);
    int j;
    switch (t) {
    case DS_TYPE_F32: memmove(dst, src, (size_t)n * sizeof(float)); break;
    case DS_TYPE_F16: {
        const uint16_t *s = DS__CAST(const uint16_t *, src);
        for (i = 0; i < n; i++) dst[i] = ds__f16_to_f32(s[i]);
        break;
    }
    case DS_TYPE_BF16: {
        const uint16_t *s = DS__CAST(const uint16_t *, src);
        for (i = 0; i < n; i++) dst[i] = ds__bf16_to_f32(s[i]);
        break;
    }
    case DS_TYPE_Q4_0: {
        const ds__block_q4_0 *b = DS__CAST(const ds__block_q4_0 *, src);
        for (i = 0; i < nb; i++, dst += DS__QK) {
            float d = ds__f16_to_f32(b[i].d);
            for (j = 0; j < 16; j++) {
                dst[j] = d * (float)((b[i].qs[j] & 0xf) - 8);
                dst[j + 16] = d * (float)((b[i].qs[j] >> 4) - 8);
            }
        }
        break;
    }
    case DS_TYPE_Q4_1: {
        const ds__block_q4_1 *b = DS__CAST(const ds__block_q4_1 *, src);
        for (i = 0; i < nb; i++, dst += DS__QK) {
            float d = ds__f16_to_f32(b[i].d), m = ds__f16_to_f32(b[i].m);
            for (j = 0; j < 16; j++) {
                dst[j] = d * (float)(b[i].qs[j] & 0xf) + m;
                dst[j + 16] = d * (float)(b[i].qs[j] >> 4) + m;
            }
        }
        break;
    }
    case DS_TYPE_Q8_0: {
        const ds__block_q8_0 *b = DS__CAST(const ds__block_q8_0 *, src);
        for (i = 0; i < nb; i++, dst += DS__QK) {
            float d = ds__f16_to_f32(b[i].d);
            for (j = 0; j < DS__QK; j++) dst[j] = d * (float)b[i].qs[j];
        }
        break;
    }
    case DS_TYPE_Q8_1: {
        const ds__block_q8_1 *b = DS__CAST(const ds__block_q8_1 *, src);
        for (i = 0; i < nb; i++, dst += DS__QK) {
            float d = ds__f16_to_f32(b[i].d);
            for (j = 0; j < DS__QK; j++) dst[j] = d * (float)b[i].qs[j];
        }
        break;
    }
    case DS_TYPE_Q4_K: ds__dequantize_q4_k(DS__CAST(const ds__block_q4_k *, src), dst, nb); break;
    case DS_TYPE_Q6_K: ds__dequantize_q6_k(DS__CAST(const ds__block_q6_k *, src), dst, nb); break;
    case DS_TYPE_Q8_K: {
        const ds__block_q8_k *b = DS__CAST(const ds__block_q8_k *, src);
        for (i = 0; i < nb; i++, dst += DS__QK_K)
            for (j = 0; j < DS__QK_K; j++) dst[j] = b[i].d * (float)b[i].qs[j];
        break;
    }
    case DS_TYPE_COUNT_: break;
    }
}

/* dst = src (n floats) stored as type t. Q4_K and Q6_K have no quantizer here (dst untouched). */
static DS__MAYBE_UNUSED void ds__quantize_row(ds_type t, const float *src, void *dst, int64_t n) {
    int64_t i, nb = n / (int64_t)DS__MAX(1, ds__type_info(t).block_elems);
    switch (t) {
    case DS_TYPE_F32: memmove(dst, src, (size_t)n * sizeof(float)); break;
    case DS_TYPE_F16:
        for (i = 0; i < n; i++) DS__CAST(uint16_t *, dst)[i] = ds__f32_to_f16(src[i]);
        break;
    case DS_TYPE_BF16:
        for (i = 0; i < n; i++) DS__CAST(uint16_t *, dst)[i] = ds__f32_to_bf16(src[i]);
        break;
    case DS_TYPE_Q4_0: ds__quantize_q4_0(src, DS__CAST(ds__block_q4_0 *, dst), nb); break;
    case DS_TYPE_Q4_1: ds__quantize_q4_1(src, DS__CAST(ds__block_q4_1 *, dst), nb); break;
    case DS_TYPE_Q8_0: ds__quantize_q8_0(src, DS__CAST(ds__block_q8_0 *, dst), nb); break;
    case DS_TYPE_Q8_1: ds__quantize_q8_1(src, DS__CAST(ds__block_q8_1 *, dst), nb); break;
    case DS_TYPE_Q8_K: ds__quantize_q8_k(src, DS__CAST(ds__block_q8_k *, dst), nb); break;
    case DS_TYPE_Q4_K: case DS_TYPE_Q6_K: case DS_TYPE_COUNT_: break;
    }
}

// >>kernels

/* ---- scalar reference dot products -------------------------------------------------------- */
/* Each returns sum_k w[k] * x[k] over one row of K elements: w in the weight type, x in the
   activation type the weight type pairs with (ds__act_type). Integer sums are exact; the float
   rounding is per block, as llama.cpp does it, so logits agree closely. */
static float ds__dot_q4_0_q8_0_ref(int K, const void *wv, const void *xv) {
    const ds__block_q4_0 *w = DS__CAST(const ds__block_q4_0 *, wv);
    const ds__block_q8_0 *x = DS__CAST(const ds__block_q8_0 *, xv);
    float sum = 0.0f;
    int i, j;
    for (i = 0; i < K / DS__QK; i++) {
        int s = 0;
        for (j = 0; j < 16; j++) s += ((w[i].qs[j] & 0xf) - 8) * x[i].qs[j] + ((w[i].qs[j] >> 4) - 8) * x[i].qs[j + 16];
        sum += (float)s * (ds__f16_to_f32(w[i].d) * ds__f16_to_f32(x[i].d));
    }
    return sum;
}

static float ds__dot_q4_1_q8_1_ref(int K, const void *wv, const void *xv) {
    const ds__block_q4_1 *w = DS__CAST(const ds__block_q4_1 *, wv);
    const ds__block_q8_1 *x = DS__CAST(const ds__block_q8_1 *, xv);
    float sum = 0.0f;
    int i, j;
    for (i = 0; i < K / DS__QK; i++) {
        int s = 0;
        for (j = 0; j < 16; j++) s += (w[i].qs[j] & 0xf) * x[i].qs[j] + (w[i].qs[j] >> 4) * x[i].qs[j + 16];
        /* sum_j (d q_j + m) dx qx_j = d dx sum q qx + m (dx sum qx) */
        sum += (float)s * (ds__f16_to_f32(w[i].d) * ds__f16_to_f32(x[i].d)) + ds__f16_to_f32(w[i].m) * ds__f16_to_f32(x[i].s);
    }
    return sum;
}

static float ds__dot_q8_0_q8_0_ref(int K, const void *wv, const void *xv) {
    const ds__block_q8_0 *w = DS__CAST(const ds__block_q8_0 *, wv);
    const ds__block_q8_0 *x = DS__CAST(const ds__block_q8_0 *, xv);
    float sum = 0.0f;
    int i, j;
    for (i = 0; i < K / DS__QK; i++) {
        int s = 0;
        for (j = 0; j < DS__QK; j++) s += w[i].qs[j] * x[i].qs[j];
        sum += (float)s * (ds__f16_to_f32(w[i].d) * ds__f16_to_f32(x[i].d));
    }
    return sum;
}

static float ds__dot_q4_k_q8_k_ref(int K, const void *wv, const void *xv) {
    const ds__block_q4_k *w = DS__CAST(const ds__block_q4_k *, wv);
    const ds__block_q8_k *x = DS__CAST(const ds__block_q8_k *, xv);
    float sum = 0.0f;
    int i, j, l;
    for (i = 0; i < K / DS__QK_K; i++) {
        int sq = 0, sm = 0; /* sum scale * (q . qx), sum min * (sum of qx) over 8 sub-blocks */
        for (j = 0; j < 8; j++) {
            const uint8_t *q = w[i].qs + 32 * (j / 2);
            const int8_t *a = x[i].qs + 32 * j;
            int sc, mn, s = 0, shift = 4 * (j & 1);
            ds__q4_k_scale_min(w[i].scales, j, &sc, &mn);
            for (l = 0; l < 32; l++) s += ((q[l] >> shift) & 0xf) * a[l];
            sq += sc * s;
            sm += mn * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
        }
        sum += x[i].d * (ds__f16_to_f32(w[i].d) * (float)sq - ds__f16_to_f32(w[i].dmin) * (float)sm);
    }
    return sum;
}

static float ds__dot_q6_k_q8_k_ref(int K, const void *wv, const void *xv) {
    const ds__block_q6_k *w = DS__CAST(const ds__block_q6_k *, wv);
    const ds__block_q8_k *x = DS__CAST(const ds__block_q8_k *, xv);
    float sum = 0.0f;
    int i, h, k, l;
    for (i = 0; i < K / DS__QK_K; i++) {
        int sq = 0;
        for (h = 0; h < 2; h++) {
            const uint8_t *ql = w[i].ql + 64 * h, *qh = w[i].qh + 32 * h;
            for (k = 0; k < 4; k++) {
                for (l = 0; l < 32; l += 16) { /* one scale per 16 values */
                    int s = 0, e;
                    for (e = l; e < l + 16; e++) s += ds__q6_k_value(ql, qh, e, k) * x[i].qs[128 * h + 32 * k + e];
                    sq += w[i].scales[8 * h + 2 * k + l / 16] * s;
                }
            }
        }
        sum += ds__f16_to_f32(w[i].d) * x[i].d * (float)sq;
    }
    return sum;
}

static float ds__dot_f32_ref(int K, const void *wv, const void *xv) {
    const float *w = DS__CAST(const float *, wv), *x = DS__CAST(const float *, xv);
    float sum = 0.0f;
    int k;
    for (k = 0; k < K; k++) sum += w[k] * x[k];
    return sum;
}

static float ds__dot_f16_f32_ref(int K, const void *wv, const void *xv) {
    const uint16_t *w = DS__CAST(const uint16_t *, wv);
    const float *x = DS__CAST(const float *, xv);
    float sum = 0.0f;
    int k;
    for (k = 0; k < K; k++) sum += ds__f16_to_f32(w[k]) * x[k];
    return sum;
}

/* bf16 x bf16 products are exact in f32, so only the summation order separates the paths */
static float ds__dot_bf16_bf16_ref(int K, const void *wv, const void *xv) {
    const uint16_t *w = DS__CAST(const uint16_t *, wv), *x = DS__CAST(const uint16_t *, xv);
    float sum = 0.0f;
    int k;
    for (k = 0; k < K; k++) sum += ds__bf16_to_f32(w[k]) * ds__bf16_to_f32(x[k]);
    return sum;
}

/* ---- matmul ------------------------------------------------------------------------------- */
/* The activation type x is converted to before the dot products with weights of type wt
   (F32: x is used as it is). */
static ds_type ds__act_type(ds_type wt) {
    switch (wt) {
    case DS_TYPE_Q4_0: case DS_TYPE_Q8_0: return DS_TYPE_Q8_0;
    case DS_TYPE_Q4_1: return DS_TYPE_Q8_1;
    case DS_TYPE_Q4_K: case DS_TYPE_Q6_K: return DS_TYPE_Q8_K;
    case DS_TYPE_BF16: return DS_TYPE_BF16;
    default: return DS_TYPE_F32;
    }
}

typedef float (*ds__dot_fn)(int K, const void *w, const void *x);
static ds__dot_fn ds__dot_ref(ds_type wt) {
    switch (wt) {
    case DS_TYPE_Q4_0: return ds__dot_q4_0_q8_0_ref;
    case DS_TYPE_Q4_1: return ds__dot_q4_1_q8_1_ref;
    case DS_TYPE_Q8_0: return ds__dot_q8_0_q8_0_ref;
    case DS_TYPE_Q4_K: return ds__dot_q4_k_q8_k_ref;
    case DS_TYPE_Q6_K: return ds__dot_q6_k_q8_k_ref;
    case DS_TYPE_F16: return ds__dot_f16_f32_ref;
    case DS_TYPE_BF16: return ds__dot_bf16_bf16_ref;
    default: return ds__dot_f32_ref;
    }
}

/* One matmul call's operands. xa is x converted to the activation type (or x itself). */
typedef struct ds__mm {
    float *y;                 /* (T, N) */
    const float *x;           /* (T, K) */
    const uint8_t *w, *xa;    /* (N, K) in wt, (T, K) in the activation type */
    size_t w_row, xa_row;     /* bytes per row */
    int T, N, K;
    ds_type wt;
    int n_chunk, t_chunk, n_tiles; /* the task grid: tiles of t_chunk tokens x n_chunk rows */
    void (*gemm)(const struct ds__mm *m, int t0, int t1, int n0, int n1);
    void (*quantize)(ds_type at, const float *x, void *dst, int K);
} ds__mm;

/* y[t0:t1, n0:n1] */
typedef void (*ds__gemm_fn)(const ds__mm *m, int t0, int t1, int n0, int n1);
static void ds__gemm_ref(const ds__mm *m, int t0, int t1, int n0, int n1) {
    ds__dot_fn dot = ds__dot_ref(m->wt);
    int t, n;
    for (t = t0; t < t1; t++)
        for (n = n0; n < n1; n++) m->y[(size_t)t * m->N + n] = dot(m->K, m->w + (size_t)n * m->w_row, m->xa + (size_t)t * m->xa_row);
}

/* ---- element-wise reference kernels ------------------------------------------------------ */
static void ds__axpy_f32_scalar(float *y, float a, const float *x, int n) {
    int i;
    for (i = 0; i < n; i++) y[i] += a * x[i];
}

static void ds__rmsnorm_scalar(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0.0;
    float scale;
    int i;
    for (i = 0; i < n; i++) ss += (double)x[i] * x[i];
    scale = (float)(1.0 / sqrt(ss / n + eps));
    for (i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
}

static void ds__softmax_scalar(float *x, int n) {
    float max = -INFINITY, sum = 0.0f, inv;
    int i;
    for (i = 0; i < n; i++) max = DS__MAX(max, x[i]);
    for (i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    inv = 1.0f / sum;
    for (i = 0; i < n; i++) x[i] *= inv;
}

static void ds__swiglu_scalar(float *y, const float *gate, const float *up, int n) {
    int i;
    for (i = 0; i < n; i++) y[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* rotate pairs (x[i*stride_a], x[i*stride_a + off]) by angle i, i < n_pairs, given cos/sin */
static void ds__rope_apply_scalar(float *x, int n_heads, int head_dim, int n_rot, int neox, const float *cs, const float *sn) {
    int h, i, half = n_rot / 2;
    for (h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (i = 0; i < half; i++) {
            int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * cs[i] - x1 * sn[i];
            v[b] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

/* ---- fast-path activation rows ------------------------------------------------------------ */
/* The SIMD matmuls read x quantized to Q8_0 / Q8_1 values laid out for vector loads: int8 q[K]
   | float d[nb] | float s[nb], each part 64-byte aligned (nb = K / 32). d and s hold the
   reference's f16-rounded scale and block sum (s = f16(d * sum q)), so the integer dots and
   the float scales are the reference's exactly. */
typedef struct ds__qx {
    const int8_t *q;
    const float *d, *s;
} ds__qx;
#define DS__A64(n) (((size_t)(n) + 63) & ~(size_t)63)
static DS__MAYBE_UNUSED size_t ds__qx_row_bytes(int K) { return DS__A64(K) + 2 * DS__A64(4 * (size_t)(K / DS__QK)); }
static DS__MAYBE_UNUSED ds__qx ds__qx_view(const uint8_t *row, int K) {
    ds__qx v;
    size_t a = DS__A64(4 * (size_t)(K / DS__QK));
    v.q = DS__CAST(const int8_t *, (const void *)row);
    v.d = DS__CAST(const float *, (const void *)(row + DS__A64(K)));
    v.s = DS__CAST(const float *, (const void *)(row + DS__A64(K) + a));
    return v;
}
/* the scales of one block from its max |x| and the sum of its quantized values */
static DS__MAYBE_UNUSED void ds__qx_block_scales(uint8_t *row, int K, int b, float d, int isum) {
    ds__qx v = ds__qx_view(row, K);
    DS__CAST(float *, (void *)(uintptr_t)v.d)[b] = ds__f16_to_f32(ds__f32_to_f16(d));
    DS__CAST(float *, (void *)(uintptr_t)v.s)[b] = ds__f16_to_f32(ds__f32_to_f16((float)isum * d));
}
static DS__MAYBE_UNUSED void ds__quantize_qx_scalar(const float *x, uint8_t *row, int K) {
    int b, j;
    for (b = 0; b < K / DS__QK; b++, x += DS__QK) {
        float amax = 0.0f, d, id;
        int isum = 0;
        for (j = 0; j < DS__QK; j++) amax = DS__MAX(amax, fabsf(x[j]));
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        for (j = 0; j < DS__QK; j++) {
            int q = ds__round_away(x[j] * id);
            ((int8_t *)row)[b * DS__QK + j] = (int8_t)q;
            isum += q;
        }
        ds__qx_block_scales(row, K, b, d, isum);
    }
}

#if defined(DS__X86_SIMD)
/* ============================ x86: AVX2 + FMA + F16C, AVX-512 ============================ */
#define DS__AVX2 __attribute__((target("avx2,fma,f16c")))
#define DS__AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

DS__AVX2_INLINE float ds__hsum8_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
DS__AVX2_INLINE float ds__hmax8_avx2(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
DS__AVX2_INLINE int ds__hsum8i_avx2(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}
DS__AVX2_INLINE float ds__f16_avx2(uint16_t h) { return _cvtsh_ss(h); }
/* roundf per lane (halves away from zero), as ds__round_away */
DS__AVX2_INLINE __m256 ds__round_away_avx2(__m256 v) {
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC), r = _mm256_sub_ps(v, t), one = _mm256_set1_ps(1.0f);
    t = _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(r, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one));
    return _mm256_sub_ps(t, _mm256_and_ps(_mm256_cmp_ps(r, _mm256_set1_ps(-0.5f), _CMP_LE_OQ), one));
}

/* x (K) -> a fast-path activation row, the reference's values bit for bit */
DS__AVX2 static void ds__quantize_qx_avx2(ds_type at, const float *x, void *dst, int K) {
    uint8_t *row = DS__CAST(uint8_t *, dst);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int b, j;
    (void)at;
    for (b = 0; b < K / DS__QK; b++, x += DS__QK) {
        __m256 v[4], amax = _mm256_setzero_ps(), id;
        __m256i q[4], p;
        float d, m;
        for (j = 0; j < 4; j++) {
            v[j] = _mm256_loadu_ps(x + 8 * j);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[j]));
        }
        m = ds__hmax8_avx2(amax);
        d = m / 127.0f;
        id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
        for (j = 0; j < 4; j++) q[j] = _mm256_cvttps_epi32(ds__round_away_avx2(_mm256_mul_ps(v[j], id)));
        p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)(void *)(row + b * DS__QK), _mm256_permutevar8x32_epi32(p, order));
        ds__qx_block_scales(row, K, b, d, ds__hsum8i_avx2(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]))));
    }
}

/* ---- quantized matmul tiles -------------------------------------------------------------- */
/* A tile is up to 4 weight rows x CT tokens over the whole K: each weight block is unpacked once
   per tile and each activation block loaded once, so prefill reuses both from registers. Per
   block and (row, token): one integer dot of 32 pairs into 8 int32 lanes, a conversion, and a
   multiply-add by d_w * d_x; the lanes are summed once at the end. The integer dot differs by
   instruction set (AVX2 maddubs+madd, AVX-VNNI / AVX512-VNNI dpbusd), so the tile is stamped
   out once per set by DS__DEFINE_QTILES. The u8 x s8 dots need unsigned weights: Q8_0's sign
   moves onto x (|w| * sign(x, w)); Q4_0's offset 8 is folded in per lane (each lane starts at
   -8 * its own 4 x values), so every lane holds an exact partial sum of the true terms and the
   float rounding stays relative to sum |w x|, as in the reference. */
enum { DS__QK_Q4_0, DS__QK_Q4_1, DS__QK_Q8_0 };

#define DS__DEFINE_QTILES(ISA, TARGET, DOT_U8S8)                            \
    static inline __attribute__((always_inline, target(TARGET))) void ds__qtile_##ISA(                  \
        const ds__mm *m, const int kind, int n, int nr, int t, int ct, const int CT) {                 \
        const int nb = m->K / DS__QK;                                                                  \
        const __m256i lo4 = _mm256_set1_epi8(0x0f), shift = _mm256_setr_epi64x(0, 0, 4, 4);            \
        const uint8_t *wr[4];                                                                          \
        ds__qx xr[4];                                                                                  \
        __m256 acc[4][4];                                                                              \
        __m128 macc[4];                                                                                \
        int r, c, b;                                                                                   \
        for (r = 0; r < 4; r++) wr[r] = m->w + (size_t)(n + DS__MIN(r, nr - 1)) * m->w_row;            \
        for (c = 0; c < CT; c++) {                                                                     \
            xr[c] = ds__qx_view(m->xa + (size_t)(t + DS__MIN(c, ct - 1)) * m->xa_row, m->K);           \
            macc[c] = _mm_setzero_ps();                                                                \
            for (r = 0; r < 4; r++) acc[r][c] = _mm256_setzero_ps();                                   \
        }                                                                                              \
        for (b = 0; b < nb; b++) {                                                                     \
            __m256i wq[4];                                                                             \
            __m256 dw[4];                                                                              \
            __m128 mw = _mm_setzero_ps();                                                              \
            for (r = 0; r < 4; r++) {                                                                  \
                if (kind == DS__QK_Q8_0) {                                                             \
                    const ds__block_q8_0 *bl = DS__CAST(const ds__block_q8_0 *, (const void *)wr[r]) + b; \
                    wq[r] = _mm256_loadu_si256((const __m256i *)(const void *)bl->qs);                 \
                    dw[r] = _mm256_set1_ps(_cvtsh_ss(bl->d));                                          \
                } else {                                                                               \
                    const uint8_t *qs = wr[r] + (size_t)b * (kind == DS__QK_Q4_1 ? 20 : 18) + (kind == DS__QK_Q4_1 ? 4 : 2); \
                    __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)qs)); \
                    wq[r] = _mm256_and_si256(_mm256_srlv_epi64(raw, shift), lo4);                      \
                    dw[r] = _mm256_set1_ps(_cvtsh_ss(*(const uint16_t *)(const void *)(qs - (kind == DS__QK_Q4_1 ? 4 : 2)))); \
                }                                                                                      \
            }                                                                                          \
            if (kind == DS__QK_Q4_1) {                                                                 \
                const ds__block_q4_1 *b0 = DS__CAST(const ds__block_q4_1 *, (const void *)wr[0]) + b;  \
                const ds__block_q4_1 *b1 = DS__CAST(const ds__block_q4_1 *, (const void *)wr[1]) + b;  \
                const ds__block_q4_1 *b2 = DS__CAST(const ds__block_q4_1 *, (const void *)wr[2]) + b;  \
                const ds__block_q4_1 *b3 = DS__CAST(const ds__block_q4_1 *, (const void *)wr[3]) + b;  \
                mw = _mm_cvtph_ps(_mm_setr_epi16((short)b0->m, (short)b1->m, (short)b2->m, (short)b3->m, 0, 0, 0, 0)); \
            }                                                                                          \
            for (c = 0; c < CT; c++) {                                                                 \
                const __m256i xq = _mm256_load_si256((const __m256i *)(const void *)(xr[c].q + b * DS__QK)); \
                const __m256 dx = _mm256_set1_ps(xr[c].d[b]);                                          \
                const __m256i start = kind == DS__QK_Q4_0 ? _mm256_sub_epi32(_mm256_setzero_si256(), DOT_U8S8(_mm256_setzero_si256(), _mm256_set1_epi8(8), xq)) \
                                                          : _mm256_setzero_si256();                    \
                for (r = 0; r < 4; r++) {                                                              \
                    __m256i p = kind == DS__QK_Q8_0 ? DOT_U8S8(start, _mm256_sign_epi8(wq[r], wq[r]), _mm256_sign_epi8(xq, wq[r])) \
                                                    : DOT_U8S8(start, wq[r], xq);                      \
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[r], dx), acc[r][c]); \
                }                                                                                      \
                if (kind == DS__QK_Q4_1) macc[c] = _mm_fmadd_ps(mw, _mm_set1_ps(xr[c].s[b]), macc[c]);   \
            }                                                                                          \
        }                                                                                              \
        for (c = 0; c < ct; c++) {                                                                     \
            float mm[4];                                                                               \
            _mm_storeu_ps(mm, macc[c]);                                                                \
            for (r = 0; r < nr; r++) m->y[(size_t)(t + c) * m->N + n + r] = ds__hsum8_avx2(acc[r][c]) + mm[r]; \
        }                                                                                              \
    }                                                                                                  \
    static inline __attribute__((always_inline, target(TARGET))) void ds__qgemm_##ISA(                  \
        const ds__mm *m, const int kind, int t0, int t1, int n0, int n1) {                             \
        int n, t;                                                                                      \
        for (n = n0; n < n1; n += 4) {                                                                 \
            for (t = t0; t + 4 <= t1; t += 4) ds__qtile_##ISA(m, kind, n, DS__MIN(4, n1 - n), t, 4, 4); \
            for (; t < t1; t++) ds__qtile_##ISA(m, kind, n, DS__MIN(4, n1 - n), t, 1, 1);              \
        }                                                                                              \
    }                                                                                                  \
    __attribute__((target(TARGET))) static void ds__gemm_q4_0_##ISA(const ds__mm *m, int t0, int t1, int n0, int n1) { \
        ds__qgemm_##ISA(m, DS__QK_Q4_0, t0, t1, n0, n1);                                               \
    }                                                                                                  \
    __attribute__((target(TARGET))) static void ds__gemm_q4_1_##ISA(const ds__mm *m, int t0, int t1, int n0, int n1) { \
        ds__qgemm_##ISA(m, DS__QK_Q4_1, t0, t1, n0, n1);                                               \
    }                                                                                                  \
    __attribute__((target(TARGET))) static void ds__gemm_q8_0_##ISA(const ds__mm *m, int t0, int t1, int n0, int n1) { \
        ds__qgemm_##ISA(m, DS__QK_Q8_0, t0, t1, n0, n1);                                               \
    }

/* u8 x s8 dot of 32 pairs into 8 int32 lanes, added to acc */
#define DS__DOT_U8S8_AVX2(acc, u, s) _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#define DS__DOT_U8S8_VNNI512(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#define DS__DOT_U8S8_AVXVNNI(acc, u, s) _mm256_dpbusd_avx_epi32((acc), (u), (s))
DS__DEFINE_QTILES(avx2, "avx2,fma,f16c", DS__DOT_U8S8_AVX2)
DS__DEFINE_QTILES(avxvnni, "avx2,fma,f16c,avxvnni", DS__DOT_U8S8_AVXVNNI)
DS__DEFINE_QTILES(vnni512, "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni", DS__DOT_U8S8_VNNI512)

/* ---- element-wise kernels ------------------------------------------------------------------ */
DS__AVX2 static float ds__dot_f32_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    float s;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s = ds__hsum8_avx2(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

DS__AVX2 static void ds__axpy_f32_avx2(float *y, float a, const float *x, int n) {
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(av, _mm256_loadu_ps(x + i))));
    for (; i < n; i++) y[i] += a * x[i];
}

DS__AVX2 static void ds__rmsnorm_avx2(float *y, const float *x, const float *w, int n, float eps) {
    __m256 s0 = _mm256_setzero_ps(), sc;
    float ss, scale;
    int i = 0;
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(x + i), s0);
    ss = ds__hsum8_avx2(s0);
    for (; i < n; i++) ss += x[i] * x[i];
    scale = (float)(1.0 / sqrt((double)ss / n + eps));
    sc = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), sc), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) y[i] = x[i] * scale * w[i];
}

/* e^x to ~1 ulp: x = k ln2 + r, |r| <= ln2/2, e^r by its Taylor series to r^7, 2^k through the
   exponent bits. Below -87.3 the result flushes to 0 (libm gives denormals there), above 88.7
   it is inf; NaN stays NaN. */
DS__AVX2_INLINE __m256 ds__exp_avx2(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.7228394f), lo = _mm256_set1_ps(-87.3365479f);
    __m256 k, r, p, big = _mm256_cmp_ps(x, hi, _CMP_GT_OQ), small = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256i e;
    x = _mm256_min_ps(x, hi);
    x = _mm256_max_ps(x, lo);
    k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693145752f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(1.42860677e-6f), r);
    p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    e = _mm256_slli_epi32(_mm256_cvtps_epi32(k), 23);
    p = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
    p = _mm256_andnot_ps(small, p);
    return _mm256_blendv_ps(p, _mm256_set1_ps(INFINITY), big);
}

DS__AVX2 static void ds__softmax_avx2(float *x, int n) {
    __m256 mx = _mm256_set1_ps(-INFINITY), s = _mm256_setzero_ps(), mv;
    float max, sum, inv;
    int i = 0;
    for (; i + 8 <= n; i += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + i));
    max = ds__hmax8_avx2(mx);
    for (; i < n; i++) max = DS__MAX(max, x[i]);
    mv = _mm256_set1_ps(max);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = ds__exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(x + i, e);
        s = _mm256_add_ps(s, e);
    }
    sum = ds__hsum8_avx2(s);
    for (; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    inv = 1.0f / sum;
    mv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), mv));
    for (; i < n; i++) x[i] *= inv;
}

DS__AVX2 static void ds__swiglu_avx2(float *y, const float *gate, const float *up, int n) {
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = ds__exp_avx2(_mm256_xor_ps(g, neg));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) y[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

DS__AVX2 static void ds__rope_apply_avx2(float *x, int n_heads, int head_dim, int n_rot, int neox, const float *cs, const float *sn) {
    int h, i, half = n_rot / 2;
    for (h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        i = 0;
        if (neox) {
            for (; i + 8 <= half; i += 8) {
                __m256 a = _mm256_loadu_ps(v + i), b = _mm256_loadu_ps(v + i + half), c = _mm256_loadu_ps(cs + i), s = _mm256_loadu_ps(sn + i);
                _mm256_storeu_ps(v + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
                _mm256_storeu_ps(v + i + half, _mm256_fmadd_ps(a, s, _mm256_mul_ps(b, c)));
            }
        } else {
            for (; i + 4 <= half; i += 4) { /* 4 pairs (a, b) interleaved in 8 floats */
                __m256 xv = _mm256_loadu_ps(v + 2 * i);
                __m256 c = _mm256_castps128_ps256(_mm_loadu_ps(cs + i)), s = _mm256_castps128_ps256(_mm_loadu_ps(sn + i));
                __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
                __m256 cc = _mm256_permutevar8x32_ps(c, dup), ss = _mm256_permutevar8x32_ps(s, dup);
                __m256 sw = _mm256_permute_ps(xv, 0xb1);                     /* (b, a) */
                _mm256_storeu_ps(v + 2 * i, _mm256_fmaddsub_ps(xv, cc, _mm256_mul_ps(sw, ss))); /* (a c - b s, b c + a s) */
            }
        }
        for (; i < half; i++) {
            int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * cs[i] - x1 * sn[i];
            v[b] = x0 * sn[i] + x1 * cs[i];
        }
    }
}
#endif /* DS__X86_SIMD */

/* ---- dispatch ----------------------------------------------------------------------------- */
/* Every call asks ds_cpu_features() (a load and a mask) and takes the best kernel the CPU and
   the test mask allow; the scalar reference is always there. */
#define DS__HAS(f, bits) (((f) & (bits)) == (bits))
#define DS__F_AVX2 (DS_CPU_AVX2 | DS_CPU_FMA | DS_CPU_F16C)
#define DS__F_VNNI512 (DS__F_AVX2 | DS_CPU_AVX512F | DS_CPU_AVX512BW | DS_CPU_AVX512VL | DS_CPU_AVX512VNNI)
#define DS__F_AVXVNNI (DS__F_AVX2 | DS_CPU_AVXVNNI)

static void ds__quantize_act_ref(ds_type at, const float *x, void *dst, int K) { ds__quantize_row(at, x, dst, K); }

/* the matmul kernel for weight type wt: fills m->gemm, m->quantize; returns the activation
   row bytes it needs */
static size_t ds__mm_pick(ds__mm *m, ds_type wt, int K) {
    unsigned f = ds_cpu_features();
    ds_type at = ds__act_type(wt);
    m->gemm = ds__gemm_ref;
    m->quantize = ds__quantize_act_ref;
    (void)f;
#if defined(DS__X86_SIMD)
    if (DS__HAS(f, DS__F_AVX2) && (wt == DS_TYPE_Q4_0 || wt == DS_TYPE_Q4_1 || wt == DS_TYPE_Q8_0)) {
        int l = DS__HAS(f, DS__F_VNNI512) ? 2 : DS__HAS(f, DS__F_AVXVNNI) ? 1 : 0;
        static const ds__gemm_fn q40[3] = {ds__gemm_q4_0_avx2, ds__gemm_q4_0_avxvnni, ds__gemm_q4_0_vnni512};
        static const ds__gemm_fn q41[3] = {ds__gemm_q4_1_avx2, ds__gemm_q4_1_avxvnni, ds__gemm_q4_1_vnni512};
        static const ds__gemm_fn q80[3] = {ds__gemm_q8_0_avx2, ds__gemm_q8_0_avxvnni, ds__gemm_q8_0_vnni512};
        m->gemm = wt == DS_TYPE_Q4_0 ? q40[l] : wt == DS_TYPE_Q4_1 ? q41[l] : q80[l];
        m->quantize = ds__quantize_qx_avx2;
        return ds__qx_row_bytes(K);
    }
#endif
    return at == DS_TYPE_F32 ? (size_t)K * sizeof(float) : DS__A64(ds__row_bytes(at, K));
}

static DS__MAYBE_UNUSED float ds__dot_f32(const float *a, const float *b, int n) {
#if defined(DS__X86_SIMD)
    if (DS__HAS(ds_cpu_features(), DS__F_AVX2)) return ds__dot_f32_avx2(a, b, n);
#endif
    return ds__dot_f32_ref(n, a, b);
}
static DS__MAYBE_UNUSED void ds__axpy_f32(float *y, float a, const float *x, int n) {
#if defined(DS__X86_SIMD)
    if (DS__HAS(ds_cpu_features(), DS__F_AVX2)) {
        ds__axpy_f32_avx2(y, a, x, n);
        return;
    }
#endif
    ds__axpy_f32_scalar(y, a, x, n);
}
static DS__MAYBE_UNUSED void ds__rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
#if defined(DS__X86_SIMD)
    if (DS__HAS(ds_cpu_features(), DS__F_AVX2)) {
        ds__rmsnorm_avx2(y, x, w, n, eps);
        return;
    }
#endif
    ds__rmsnorm_scalar(y, x, w, n, eps);
}
static DS__MAYBE_UNUSED void ds__softmax(float *x, int n) {
#if defined(DS__X86_SIMD)
    if (DS__HAS(ds_cpu_features(), DS__F_AVX2)) {
        ds__softmax_avx2(x, n);
        return;
    }
#endif
    ds__softmax_scalar(x, n);
}
static DS__MAYBE_UNUSED void ds__swiglu(float *y, const float *gate, const float *up, int n) {
#if defined(DS__X86_SIMD)
    if (DS__HAS(ds_cpu_features(), DS__F_AVX2)) {
        ds__swiglu_avx2(y, gate, up, n);
        return;
    }
#endif
    ds__swiglu_scalar(y, gate, up, n);
}

/* theta_i = pos * base^(-2i/n_rot), computed in double once per call and shared by the heads */
static DS__MAYBE_UNUSED void ds__rope(float *x, int n_heads, int head_dim, int n_rot, int pos, float base, int neox) {
    float cs[256], sn[256];
    int i, half = DS__MIN(n_rot / 2, 256);
    for (i = 0; i < half; i++) {
        double theta = (double)pos * pow((double)base, -2.0 * i / n_rot);
        cs[i] = (float)cos(theta);
        sn[i] = (float)sin(theta);
    }
#if defined(DS__X86_SIMD)
    if (DS__HAS(ds_cpu_features(), DS__F_AVX2)) {
        ds__rope_apply_avx2(x, n_heads, head_dim, 2 * half, neox, cs, sn);
        return;
    }
#endif
    ds__rope_apply_scalar(x, n_heads, head_dim, 2 * half, neox, cs, sn);
}

/* embedding lookup: out (K) = row `row` of a (rows, K) matrix of type t */
static DS__MAYBE_UNUSED void ds__get_row(ds_type t, const void *matrix, int64_t row, int K, float *out) {
    ds__dequantize_row(t, DS__CAST(const uint8_t *, matrix) + (size_t)row * ds__row_bytes(t, K), out, K);
}

/* the largest activation buffer any kernel level needs, so a caller's buffer fits them all */
static DS__MAYBE_UNUSED size_t ds__matmul_wsize(ds_type wt, int T, int K) {
    ds_type at = ds__act_type(wt);
    size_t row;
    if (at == DS_TYPE_F32) return 0;
    row = DS__A64(ds__row_bytes(at, K));
    if (at == DS_TYPE_Q8_0 || at == DS_TYPE_Q8_1) row = DS__MAX(row, ds__qx_row_bytes(K));
    return (size_t)T * row;
}

static void ds__matmul_quantize_task(void *ctx, int t, int n) {
    const ds__mm *m = DS__CAST(const ds__mm *, ctx);
    (void)n;
    m->quantize(ds__act_type(m->wt), m->x + (size_t)t * m->K, (void *)(uintptr_t)(m->xa + (size_t)t * m->xa_row), m->K);
}

static void ds__matmul_task(void *ctx, int i, int n) {
    const ds__mm *m = DS__CAST(const ds__mm *, ctx);
    int tt = i / m->n_tiles, nt = i % m->n_tiles;
    int t0 = tt * m->t_chunk, n0 = nt * m->n_chunk;
    (void)n;
    m->gemm(m, t0, DS__MIN(m->T, t0 + m->t_chunk), n0, DS__MIN(m->N, n0 + m->n_chunk));
}

/* y (T, N) = x (T, K) @ w^T with w (N, K) of type wt. wsbuf: ds__matmul_wsize bytes, 64-aligned.
   Tasks are tiles of up to 64 tokens x n_chunk rows; n_chunk shrinks until there are several
   tasks per thread (so two threads balance) but stays a multiple of 4 rows (the micro-tile). */
static DS__MAYBE_UNUSED void ds__matmul(ds_pool *pool, float *y, const float *x, int T, const void *w, ds_type wt, int N, int K, void *wsbuf) {
    ds__mm m;
    int n_threads = ds_pool_size(pool), t_tiles;
    memset(&m, 0, sizeof m);
    m.T = T; m.N = N; m.K = K; m.wt = wt;
    m.x = x;
    m.w = DS__CAST(const uint8_t *, w);
    m.w_row = ds__row_bytes(wt, K);
    m.xa_row = ds__mm_pick(&m, wt, K);
    if (ds__act_type(wt) == DS_TYPE_F32) {
        m.xa = DS__CAST(const uint8_t *, (const void *)x);
    } else {
        m.xa = DS__CAST(const uint8_t *, wsbuf);
        if (T > 1) ds_pool_run(pool, ds__matmul_quantize_task, &m, T);
        else ds__matmul_quantize_task(&m, 0, 1);
    }
    m.y = y;
    m.t_chunk = DS__MIN(T, 64);
    t_tiles = (T + m.t_chunk - 1) / m.t_chunk;
    m.n_chunk = 256;
    while (m.n_chunk > 4 && t_tiles * ((N + m.n_chunk - 1) / m.n_chunk) < 8 * n_threads) m.n_chunk /= 2;
    m.n_tiles = (N + m.n_chunk - 1) / m.n_chunk;
    ds_pool_run(pool, ds__matmul_task, &m, m.n_tiles * t_tiles);
}

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

// >>deepseek
/* ---- DeepSeek-V2/V3 layers: Multi-head Latent Attention and DeepSeekMoE ---------------------
   Shapes: C model width, H heads, Dn / Dr the no-RoPE / RoPE parts of a query-key head
   (Dq = Dn + Dr), Dv the value head, R = kv_lora_rank, Rq = q_lora_rank, E routed experts,
   K = n_expert_used, F = n_ff_expert, S shared experts. */

/* A weight matrix of `rows` rows of `cols` elements (ggml's ne[1] x ne[0]); 3-D tensors are
   seen as ne[2] * ne[1] rows. */
typedef struct ds__wmat {
    const void *data;
    ds_type type;
    int64_t rows, cols;
} ds__wmat;

typedef struct ds__mla_layer {
    ds__wmat wq;                  /* (H*Dq, C), when q_lora_rank == 0 */
    ds__wmat wq_a, wq_b;          /* (Rq, C), (H*Dq, Rq) */
    const float *q_a_norm;        /* (Rq) */
    ds__wmat wkv_a;               /* (R + Dr, C): the latent, then the shared RoPE key */
    const float *kv_a_norm;       /* (R) */
    ds__wmat wkv_b;               /* (H*(Dn+Dv), R): per head Dn key rows then Dv value rows */
    ds__wmat wk_b, wv_b;          /* split layout: (H*R, Dn) = each head's key rows transposed, (H*Dv, R) */
    ds__wmat wo;                  /* (C, H*Dv) */
} ds__mla_layer;

typedef struct ds__moe_layer {
    ds__wmat gate_inp;            /* (E, C) router */
    const float *exp_bias;        /* (E) selection bias, or NULL */
    ds__wmat gate_exps, up_exps;  /* (E*F, C) */
    ds__wmat down_exps;           /* (E*C, F) */
    ds__wmat gate_sh, up_sh;      /* (S*F, C), absent when S == 0 */
    ds__wmat down_sh;             /* (C, S*F) */
} ds__moe_layer;

/* SwiGLU feed-forward weights (dense layers) */
typedef struct ds__ffn_layer {
    ds__wmat gate, up, down;      /* (F, C), (F, C), (C, F) */
} ds__ffn_layer;

static const void *ds__wmat_row(const ds__wmat *m, int64_t r) {
    return DS__CAST(const uint8_t *, m->data) + (size_t)r * ds__row_bytes(m->type, m->cols);
}

/* y (T, n) = x (T, cols) @ rows [r0, r0 + n) of m, transposed */
static void ds__wmat_mul(ds_pool *pool, float *y, const float *x, int T, const ds__wmat *m, int64_t r0, int n, void *ws) {
    ds__matmul(pool, y, x, T, ds__wmat_row(m, r0), m->type, n, (int)m->cols, ws);
}

/* y (cols) = rows [r0, r0 + n) of m, transposed, times x (n): sum_i x_i row_i. row: cols floats. */
static void ds__wmat_mul_t(const ds__wmat *m, int64_t r0, int n, const float *x, float *y, float *row) {
    int i, C = (int)m->cols;
    memset(y, 0, (size_t)C * sizeof *y);
    for (i = 0; i < n; i++) {
        if (m->type == DS_TYPE_F32) {
            ds__axpy_f32(y, x[i], DS__CAST(const float *, ds__wmat_row(m, r0 + i)), C);
        } else {
            ds__dequantize_row(m->type, DS__CAST(const uint8_t *, ds__wmat_row(m, r0 + i)), row, C);
            ds__axpy_f32(y, x[i], row, C);
        }
    }
}

/* ---- shapes and cache ------------------------------------------------------------------------ */
static int ds__mla_dq(const ds_model_config *c) { return c->qk_nope_dim + c->qk_rope_dim; }
/* floats per token and MLA layer in the compressed cache: the normed latent and the RoPE key */
static DS__MAYBE_UNUSED int ds__mla_cache_row(const ds_model_config *c) { return c->kv_lora_rank + c->qk_rope_dim; }

/* softmax scale of MLA scores: YaRN's magnitude correction squared over sqrt(Dq) */
static float ds__mla_scale(const ds_model_config *c) {
    float ms = 1.0f;
    if (c->rope_yarn_factor > 1.0f) ms = 1.0f + 0.1f * c->rope_yarn_log_mul * logf(c->rope_yarn_factor);
    return ms * ms / sqrtf((float)ds__mla_dq(c));
}

DS_API size_t ds_model_kv_bytes_per_token(const ds_model_config *c, size_t elem_size) {
    size_t n = 0;
    int i, hd;
    if (!c) return 0;
    hd = c->head_dim ? c->head_dim : (c->n_head ? c->n_embd / c->n_head : 0);
    for (i = 0; i < c->n_layer && i < DS_MAX_LAYERS; i++) {
        if (c->layers[i].attn == DS_ATTN_MLA) n += (size_t)ds__mla_cache_row(c);
        else n += 2 * (size_t)(c->n_head_kv ? c->n_head_kv : c->n_head) * (size_t)hd;
    }
    return n * elem_size;
}

/* ---- scratch --------------------------------------------------------------------------------- */
/* Buffers of one forward call of up to T tokens over up to n_ctx cached positions. */
typedef struct ds__dsk_scratch {
    float *q;        /* (T, H*Dq) */
    float *qa;       /* (T, max(Rq, R + Dr)) */
    float *att;      /* (T, H*Dv) */
    float *lat;      /* (n_ctx, R) latents gathered for the naive path */
    float *kv;       /* (n_ctx, H*(Dn+Dv)) decompressed keys and values (naive path) */
    float *p;        /* (n_ctx) scores */
    float *vec;      /* (4 * max(R, C, Dn, Dv, F)) */
    float *logits;   /* (T, E) router */
    float *gw;       /* (T, K) routing weights */
    int *gi;         /* (T, K) chosen experts */
    int *order;      /* (T*K) token slots grouped by expert */
    int *count;      /* (E + 1) */
    float *xg;       /* (T, C) gathered rows */
    float *h1, *h2;  /* (T, max(F*max(S,1), n_ff)) */
    float *yg;       /* (T, C) */
    void *ws;        /* matmul activation buffer */
    void *mem;
} ds__dsk_scratch;

static size_t ds__dsk_ws_bytes(int T, int K) {
    static const ds_type ts[] = {DS_TYPE_F16, DS_TYPE_BF16, DS_TYPE_Q4_0, DS_TYPE_Q4_1, DS_TYPE_Q8_0, DS_TYPE_Q4_K, DS_TYPE_Q6_K};
    size_t i, b = 0, k = ((size_t)K + 255) / 256 * 256;
    for (i = 0; i < sizeof ts / sizeof ts[0]; i++) b = DS__MAX(b, ds__matmul_wsize(ts[i], T, (int)k));
    return b;
}

static DS__MAYBE_UNUSED ds_status ds__dsk_scratch_alloc(const ds_model_config *c, int T, int n_ctx, int naive, ds__dsk_scratch *s) {
    int H = c->n_head, Dq = ds__mla_dq(c), Dv = c->v_head_dim, R = c->kv_lora_rank, Dr = c->qk_rope_dim;
    int E = DS__MAX(c->n_expert, 1), K = DS__MAX(c->n_expert_used, 1), G = DS__MAX(c->n_expert_groups, 1);
    int F = DS__MAX(c->n_ff, c->n_ff_expert * DS__MAX(c->n_expert_shared, 1));
    int wide = DS__MAX(DS__MAX(DS__MAX(R, c->n_embd), DS__MAX(DS__MAX(Dq, Dv), F)), E + G);
    int widest = DS__MAX(DS__MAX(wide, H * Dq), DS__MAX(H * Dv, R + Dr));
    size_t nf[16], off = 0, total;
    float *f;
    int i;
    memset(s, 0, sizeof *s);
    nf[0] = (size_t)T * H * Dq;                                     /* q */
    nf[1] = (size_t)T * DS__MAX(c->q_lora_rank, R + Dr);            /* qa */
    nf[2] = (size_t)T * H * Dv;                                     /* att */
    nf[3] = naive ? (size_t)n_ctx * R : 0;                          /* lat */
    nf[4] = naive ? (size_t)n_ctx * H * (c->qk_nope_dim + Dv) : 0;  /* kv */
    nf[5] = (size_t)n_ctx;                                          /* p */
    nf[6] = 4 * (size_t)wide;                                       /* vec */
    nf[7] = (size_t)T * E;                                          /* logits */
    nf[8] = nf[9] = nf[10] = (size_t)T * K;                         /* gw, gi, order */
    nf[11] = (size_t)E + 1;                                         /* count */
    nf[12] = (size_t)T * c->n_embd;                                 /* xg */
    nf[13] = nf[14] = (size_t)T * F;                                /* h1, h2 */
    nf[15] = (size_t)T * c->n_embd;                                 /* yg */
    for (i = 0; i < 16; i++) off += (nf[i] + 15) / 16 * 16;
    total = off * sizeof(float) + ds__dsk_ws_bytes(T, widest) + 64;
    s->mem = ds_alloc(total);
    if (!s->mem) return ds__fail(DS_ERR_NO_MEMORY, "deepseek2: out of memory for %zu bytes of scratch", total);
    f = DS__CAST(float *, s->mem);
    off = 0;
#define DS__TAKE(ptr, T_, i) (ptr = DS__CAST(T_ *, (void *)(f + off)), off += (nf[i] + 15) / 16 * 16)
    DS__TAKE(s->q, float, 0);
    DS__TAKE(s->qa, float, 1);
    DS__TAKE(s->att, float, 2);
    DS__TAKE(s->lat, float, 3);
    DS__TAKE(s->kv, float, 4);
    DS__TAKE(s->p, float, 5);
    DS__TAKE(s->vec, float, 6);
    DS__TAKE(s->logits, float, 7);
    DS__TAKE(s->gw, float, 8);
    DS__TAKE(s->gi, int, 9);
    DS__TAKE(s->order, int, 10);
    DS__TAKE(s->count, int, 11);
    DS__TAKE(s->xg, float, 12);
    DS__TAKE(s->h1, float, 13);
    DS__TAKE(s->h2, float, 14);
    DS__TAKE(s->yg, float, 15);
#undef DS__TAKE
    s->ws = DS__CAST(void *, DS__CAST(uint8_t *, s->mem) + DS__A64(off * sizeof(float)));
    return DS_OK;
}

static DS__MAYBE_UNUSED void ds__dsk_scratch_free(ds__dsk_scratch *s) {
    ds_free(s->mem);
    s->mem = NULL;
}

/* ---- MLA ------------------------------------------------------------------------------------- */
/* q (T, H*Dq) from the normed input: W_q x, or W_qb rmsnorm(W_qa x) */
static void ds__mla_query(ds_pool *pool, const ds_model_config *c, const ds__mla_layer *L, const float *x, int T, ds__dsk_scratch *s) {
    int t, HDq = c->n_head * ds__mla_dq(c), Rq = c->q_lora_rank;
    if (!Rq) {
        ds__wmat_mul(pool, s->q, x, T, &L->wq, 0, HDq, s->ws);
        return;
    }
    ds__wmat_mul(pool, s->qa, x, T, &L->wq_a, 0, Rq, s->ws);
    for (t = 0; t < T; t++) ds__rmsnorm(s->qa + (size_t)t * Rq, s->qa + (size_t)t * Rq, L->q_a_norm, Rq, c->norm_eps);
    ds__wmat_mul(pool, s->q, s->qa, T, &L->wq_b, 0, HDq, s->ws);
}

/* Writes the compressed cache rows of the T new tokens: rmsnorm'd latent, roped shared key. */
static void ds__mla_compress(ds_pool *pool, const ds_model_config *c, const ds__mla_layer *L, const float *x, int T, int pos0, float *cache, ds__dsk_scratch *s) {
    int t, R = c->kv_lora_rank, Dr = c->qk_rope_dim, row = R + Dr;
    ds__wmat_mul(pool, s->qa, x, T, &L->wkv_a, 0, row, s->ws);
    for (t = 0; t < T; t++) {
        float *src = s->qa + (size_t)t * row, *dst = cache + (size_t)(pos0 + t) * row;
        ds__rmsnorm(dst, src, L->kv_a_norm, R, c->norm_eps);
        memcpy(dst + R, src + R, (size_t)Dr * sizeof *dst);
        ds__rope(dst + R, 1, Dr, Dr, pos0 + t, c->rope_base, 0);
    }
}

/* key rows of head h: (Dn, R) as rows of wkv_b, or (R, Dn) transposed in wk_b */
static void ds__mla_key_absorb(const ds_model_config *c, const ds__mla_layer *L, int h, const float *q_nope, float *q_lat, ds__dsk_scratch *s) {
    int Dn = c->qk_nope_dim, Dv = c->v_head_dim, R = c->kv_lora_rank;
    if (L->wk_b.data) ds__matmul(NULL, q_lat, q_nope, 1, ds__wmat_row(&L->wk_b, (int64_t)h * R), L->wk_b.type, R, Dn, s->ws);
    else ds__wmat_mul_t(&L->wkv_b, (int64_t)h * (Dn + Dv), Dn, q_nope, q_lat, s->vec + 2 * DS__MAX(R, Dn));
}

static void ds__mla_value_expand(const ds_model_config *c, const ds__mla_layer *L, int h, const float *lat, float *out, void *ws) {
    int Dn = c->qk_nope_dim, Dv = c->v_head_dim, R = c->kv_lora_rank;
    if (L->wv_b.data) ds__matmul(NULL, out, lat, 1, ds__wmat_row(&L->wv_b, (int64_t)h * Dv), L->wv_b.type, Dv, R, ws);
    else ds__matmul(NULL, out, lat, 1, ds__wmat_row(&L->wkv_b, (int64_t)h * (Dn + Dv) + Dn), L->wkv_b.type, Dv, R, ws);
}

/* Absorbed attention of one query head against n cached rows: the no-RoPE query is taken into
   latent space (q_lat = W_k^T q_nope), scores read the R + Dr cache floats of each position, and
   the latent mix is expanded by W_v once. out (Dv). */
static void ds__mla_attend_absorbed(const ds_model_config *c, const ds__mla_layer *L, int h, const float *qh, const float *cache, int n, float *out, ds__dsk_scratch *s) {
    int j, R = c->kv_lora_rank, Dn = c->qk_nope_dim, Dr = c->qk_rope_dim, row = R + Dr;
    float *q_lat = s->vec, *mix = s->vec + DS__MAX(R, Dn), scale = ds__mla_scale(c);
    ds__mla_key_absorb(c, L, h, qh, q_lat, s);
    for (j = 0; j < n; j++) {
        const float *cj = cache + (size_t)j * row;
        s->p[j] = scale * (ds__dot_f32(q_lat, cj, R) + ds__dot_f32(qh + Dn, cj + R, Dr));
    }
    ds__softmax(s->p, n);
    memset(mix, 0, (size_t)R * sizeof *mix);
    for (j = 0; j < n; j++) ds__axpy_f32(mix, s->p[j], cache + (size_t)j * row, R);
    ds__mla_value_expand(c, L, h, mix, out, s->ws);
}

/* Naive path: decompress every cached position into per-head keys and values
   (kv (n, H*(Dn+Dv)), head-major like wkv_b's rows), then attend as multi-head attention. */
static void ds__mla_decompress(ds_pool *pool, const ds_model_config *c, const ds__mla_layer *L, const float *cache, int n, ds__dsk_scratch *s) {
    int j, h, R = c->kv_lora_rank, Dn = c->qk_nope_dim, Dv = c->v_head_dim, Dr = c->qk_rope_dim, H = c->n_head;
    for (j = 0; j < n; j++) memcpy(s->lat + (size_t)j * R, cache + (size_t)j * (R + Dr), (size_t)R * sizeof(float));
    if (L->wkv_b.data) {
        ds__wmat_mul(pool, s->kv, s->lat, n, &L->wkv_b, 0, H * (Dn + Dv), s->ws);
        return;
    }
    for (j = 0; j < n; j++)
        for (h = 0; h < H; h++) {
            float *kvh = s->kv + ((size_t)j * H + h) * (Dn + Dv);
            ds__wmat_mul_t(&L->wk_b, (int64_t)h * R, R, s->lat + (size_t)j * R, kvh, s->vec);
            ds__mla_value_expand(c, L, h, s->lat + (size_t)j * R, kvh + Dn, s->ws);
        }
}

static void ds__mla_attend_naive(const ds_model_config *c, int h, const float *qh, const float *cache, int n, float *out, ds__dsk_scratch *s) {
    int j, R = c->kv_lora_rank, Dn = c->qk_nope_dim, Dv = c->v_head_dim, Dr = c->qk_rope_dim, H = c->n_head;
    float scale = ds__mla_scale(c);
    for (j = 0; j < n; j++) {
        const float *kj = s->kv + ((size_t)j * H + h) * (Dn + Dv);
        s->p[j] = scale * (ds__dot_f32(qh, kj, Dn) + ds__dot_f32(qh + Dn, cache + (size_t)j * (R + Dr) + R, Dr));
    }
    ds__softmax(s->p, n);
    memset(out, 0, (size_t)Dv * sizeof *out);
    for (j = 0; j < n; j++) ds__axpy_f32(out, s->p[j], s->kv + ((size_t)j * H + h) * (Dn + Dv) + Dn, Dv);
}

/* out (T, C) = MLA of the normed input x (T, C) of tokens at positions pos0.. pos0+T-1.
   cache (n_ctx, R + Dr) holds positions [0, pos0) and gets the new ones. naive: decompress
   keys and values instead of absorbing W_k and W_v (same result, more memory). */
static void ds__mla_forward(ds_pool *pool, const ds_model_config *c, const ds__mla_layer *L, const float *x, int T, int pos0, float *cache, int naive, float *out, ds__dsk_scratch *s) {
    int t, h, H = c->n_head, Dq = ds__mla_dq(c), Dv = c->v_head_dim;
    ds__mla_query(pool, c, L, x, T, s);
    for (t = 0; t < T; t++) ds__rope(s->q + (size_t)t * H * Dq + c->qk_nope_dim, H, Dq, c->qk_rope_dim, pos0 + t, c->rope_base, 0);
    ds__mla_compress(pool, c, L, x, T, pos0, cache, s);
    if (naive) ds__mla_decompress(pool, c, L, cache, pos0 + T, s);
    for (t = 0; t < T; t++)
        for (h = 0; h < H; h++) {
            const float *qh = s->q + ((size_t)t * H + h) * Dq;
            float *oh = s->att + ((size_t)t * H + h) * Dv;
            if (naive) ds__mla_attend_naive(c, h, qh, cache, pos0 + t + 1, oh, s);
            else ds__mla_attend_absorbed(c, L, h, qh, cache, pos0 + t + 1, oh, s);
        }
    ds__wmat_mul(pool, out, s->att, T, &L->wo, 0, c->n_embd, s->ws);
}

/* ---- feed-forward ---------------------------------------------------------------------------- */
/* y (T, C) = W_down (silu(W_gate x) * W_up x) over hidden rows [r0, r0+F) of gate/up and the
   down matrix rows [d0, d0+C). */
static void ds__swiglu_ffn(ds_pool *pool, const ds__wmat *gate, const ds__wmat *up, const ds__wmat *down, int64_t r0, int64_t d0, int F, int C, const float *x, int T, float *y, ds__dsk_scratch *s) {
    int t;
    ds__wmat_mul(pool, s->h1, x, T, gate, r0, F, s->ws);
    ds__wmat_mul(pool, s->h2, x, T, up, r0, F, s->ws);
    for (t = 0; t < T; t++) ds__swiglu(s->h1 + (size_t)t * F, s->h1 + (size_t)t * F, s->h2 + (size_t)t * F, F);
    ds__matmul(pool, y, s->h1, T, ds__wmat_row(down, d0), down->type, C, F, s->ws);
}

/* Chooses n_expert_used experts for one token from router logits (E): probs by softmax or
   sigmoid; selection ranks probs + bias (the bias steers choice only), first keeping the
   n_groups_used groups whose two best experts score highest; weights are the chosen probs,
   optionally renormalised, times routed_scale. */
static void ds__moe_route(const ds_model_config *c, const float *bias, float *logits, int *gi, float *gw, float *sel) {
    int E = c->n_expert, K = c->n_expert_used, G = c->n_expert_groups, e, k, g;
    float sum = 0.0f;
    if (c->gating == DS_GATING_SIGMOID) for (e = 0; e < E; e++) logits[e] = 1.0f / (1.0f + expf(-logits[e]));
    else ds__softmax(logits, E);
    for (e = 0; e < E; e++) sel[e] = logits[e] + (bias ? bias[e] : 0.0f);
    if (G > 1 && c->n_groups_used > 0 && c->n_groups_used < G) {
        int per = E / G, used;
        float *gs = sel + E;
        for (g = 0; g < G; g++) {
            float b1 = -INFINITY, b2 = -INFINITY;
            for (e = g * per; e < (g + 1) * per; e++) {
                if (sel[e] > b1) { b2 = b1; b1 = sel[e]; }
                else if (sel[e] > b2) b2 = sel[e];
            }
            gs[g] = per > 1 ? b1 + b2 : b1;
        }
        for (used = 0; used < c->n_groups_used; used++) {
            int best = -1;
            for (g = 0; g < G; g++)
                if (gs[g] > -INFINITY && gs[g] < INFINITY && (best < 0 || gs[g] > gs[best])) best = g;
            gs[best] = INFINITY;   /* kept */
        }
        for (g = 0; g < G; g++)
            if (gs[g] != INFINITY)
                for (e = g * per; e < (g + 1) * per; e++) sel[e] = -INFINITY;
    }
    for (k = 0; k < K; k++) {
        int best = -1;
        for (e = 0; e < E; e++)
            if (sel[e] > -INFINITY && (best < 0 || sel[e] > sel[best])) best = e;
        if (best < 0) best = 0;
        gi[k] = best;
        gw[k] = logits[best];
        sel[best] = -INFINITY;
        sum += gw[k];
    }
    if (c->norm_topk) for (k = 0; k < K; k++) gw[k] /= DS__MAX(sum, 6.103515625e-5f);
    for (k = 0; k < K; k++) gw[k] *= c->routed_scale > 0.0f ? c->routed_scale : 1.0f;
}

/* out (T, C) = shared experts + routed experts of x (T, C). Tokens are grouped by expert so
   each chosen expert runs one matmul over all its tokens. */
static void ds__moe_forward(ds_pool *pool, const ds_model_config *c, const ds__moe_layer *L, const float *x, int T, float *out, ds__dsk_scratch *s) {
    int E = c->n_expert, K = c->n_expert_used, C = c->n_embd, F = c->n_ff_expert, t, k, e, i;
    ds__wmat_mul(pool, s->logits, x, T, &L->gate_inp, 0, E, s->ws);
    for (t = 0; t < T; t++) ds__moe_route(c, L->exp_bias, s->logits + (size_t)t * E, s->gi + (size_t)t * K, s->gw + (size_t)t * K, s->vec);
    if (L->gate_sh.data) ds__swiglu_ffn(pool, &L->gate_sh, &L->up_sh, &L->down_sh, 0, 0, F * c->n_expert_shared, C, x, T, out, s);
    else memset(out, 0, (size_t)T * C * sizeof *out);
    /* counting sort of the T*K (token, slot) pairs by expert */
    memset(s->count, 0, (size_t)(E + 1) * sizeof *s->count);
    for (i = 0; i < T * K; i++) s->count[s->gi[i] + 1]++;
    for (e = 0; e < E; e++) s->count[e + 1] += s->count[e];
    for (i = 0; i < T * K; i++) s->order[s->count[s->gi[i]]++] = i;
    for (e = E; e > 0; e--) s->count[e] = s->count[e - 1];
    s->count[0] = 0;
    for (e = 0; e < E; e++) {
        int n = s->count[e + 1] - s->count[e];
        const int *slots = s->order + s->count[e];
        if (!n) continue;
        for (i = 0; i < n; i++) memcpy(s->xg + (size_t)i * C, x + (size_t)(slots[i] / K) * C, (size_t)C * sizeof(float));
        ds__swiglu_ffn(pool, &L->gate_exps, &L->up_exps, &L->down_exps, (int64_t)e * F, (int64_t)e * C, F, C, s->xg, n, s->yg, s);
        for (i = 0; i < n; i++) {
            t = slots[i] / K;
            k = slots[i] % K;
            ds__axpy_f32(out + (size_t)t * C, s->gw[(size_t)t * K + k], s->yg + (size_t)i * C, C);
        }
    }
}

/* ---- deepseek2 GGUF metadata ----------------------------------------------------------------- */
static ds_status ds__dsk_u32(const ds_gguf *g, const char *key, int required, int *out) {
    char name[128];
    uint32_t v;
    ds_status s;
    snprintf(name, sizeof name, "deepseek2.%s", key);
    s = ds_gguf_get_u32(g, name, &v);
    if (s == DS_ERR_NOT_FOUND && !required) return DS_OK;
    if (s == DS_ERR_NOT_FOUND) return ds__fail(DS_ERR_FORMAT, "deepseek2: key '%s' is missing", name);
    if (s != DS_OK || v > (1u << 24)) return ds__fail(DS_ERR_FORMAT, "deepseek2: key '%s' is not an integer in [0, 2^24]", name);
    *out = (int)v;
    return DS_OK;
}

static ds_status ds__dsk_f32(const ds_gguf *g, const char *key, float *out) {
    char name[128];
    float v;
    ds_status s;
    snprintf(name, sizeof name, "deepseek2.%s", key);
    s = ds_gguf_get_f32(g, name, &v);
    if (s == DS_ERR_NOT_FOUND) return DS_OK;
    if (s != DS_OK || !(v >= 0.0f) || v > 1e12f) return ds__fail(DS_ERR_FORMAT, "deepseek2: key '%s' is not a float in [0, 1e12]", name);
    *out = v;
    return DS_OK;
}

/* Checks what the MLA and MoE layers need of a config; names the first impossible field. */
DS_API ds_status ds_model_config_check_deepseek(const ds_model_config *c) {
    int i, mla = 0, moe = 0;
    if (!c) return ds__fail(DS_ERR_INVALID_ARG, "deepseek: NULL config");
    for (i = 0; i < c->n_layer && i < DS_MAX_LAYERS; i++) {
        mla |= c->layers[i].attn == DS_ATTN_MLA;
        moe |= c->layers[i].ffn == DS_FFN_MOE;
    }
    if (mla) {
        if (c->kv_lora_rank <= 0 || c->qk_rope_dim <= 0 || c->qk_nope_dim <= 0 || c->v_head_dim <= 0)
            return ds__fail(DS_ERR_INVALID_ARG, "deepseek: MLA layers need kv_lora_rank, qk_nope_dim, qk_rope_dim and v_head_dim > 0 (have %d, %d, %d, %d)", c->kv_lora_rank, c->qk_nope_dim, c->qk_rope_dim, c->v_head_dim);
        if (c->qk_rope_dim % 2 || c->qk_rope_dim > 512) return ds__fail(DS_ERR_INVALID_ARG, "deepseek: qk_rope_dim = %d must be even and at most 512", c->qk_rope_dim);
        if (c->q_lora_rank < 0) return ds__fail(DS_ERR_INVALID_ARG, "deepseek: q_lora_rank = %d is negative", c->q_lora_rank);
    }
    if (moe) {
        if (c->n_expert <= 0 || c->n_expert_used <= 0 || c->n_expert_used > c->n_expert || c->n_ff_expert <= 0)
            return ds__fail(DS_ERR_INVALID_ARG, "deepseek: MoE layers need 0 < n_expert_used <= n_expert and n_ff_expert > 0 (have %d of %d, %d)", c->n_expert_used, c->n_expert, c->n_ff_expert);
        if (c->n_expert_shared < 0) return ds__fail(DS_ERR_INVALID_ARG, "deepseek: n_expert_shared = %d is negative", c->n_expert_shared);
        if (c->n_expert_groups > 1 && (c->n_expert % c->n_expert_groups || c->n_groups_used <= 0 || c->n_groups_used > c->n_expert_groups ||
                                       c->n_groups_used * (c->n_expert / c->n_expert_groups) < c->n_expert_used))
            return ds__fail(DS_ERR_INVALID_ARG, "deepseek: %d experts in %d groups, %d groups used cannot supply %d experts", c->n_expert, c->n_expert_groups, c->n_groups_used, c->n_expert_used);
        if (c->gating != DS_GATING_SOFTMAX && c->gating != DS_GATING_SIGMOID) return ds__fail(DS_ERR_INVALID_ARG, "deepseek: unknown gating %d", (int)c->gating);
    }
    return DS_OK;
}

/* The config of a deepseek2 file (llama.cpp's keys). Every layer is MLA; layers from
   leading_dense_block_count on are MoE. The split attn_k_b / attn_v_b layout stores the MLA
   head sizes in key_length_mla / value_length_mla. */
static DS__MAYBE_UNUSED ds_status ds__deepseek2_read_config(const ds_gguf *g, ds_model_config *c) {
    ds_status s;
    int key_len = 0, val_len = 0, key_mla = 0, val_mla = 0, lead = 0, gating = 0, norm = 0, i;
    ds_str st;
    memset(c, 0, sizeof *c);
    strcpy(c->arch, "deepseek2");
    c->norm_eps = 1e-6f;
    c->rope_base = 10000.0f;
    c->n_ctx = 4096;
    c->routed_scale = 1.0f;
#define DS__U(key, req, dst) if ((s = ds__dsk_u32(g, key, req, dst)) != DS_OK) return s
#define DS__F(key, dst) if ((s = ds__dsk_f32(g, key, dst)) != DS_OK) return s
    DS__U("context_length", 0, &c->n_ctx);
    DS__U("embedding_length", 1, &c->n_embd);
    DS__U("block_count", 1, &c->n_layer);
    DS__U("feed_forward_length", 0, &c->n_ff);
    DS__U("attention.head_count", 1, &c->n_head);
    DS__U("attention.key_length", 1, &key_len);
    DS__U("attention.value_length", 1, &val_len);
    DS__U("attention.key_length_mla", 0, &key_mla);
    DS__U("attention.value_length_mla", 0, &val_mla);
    DS__U("attention.q_lora_rank", 0, &c->q_lora_rank);
    DS__U("attention.kv_lora_rank", 1, &c->kv_lora_rank);
    DS__U("rope.dimension_count", 1, &c->qk_rope_dim);
    DS__U("leading_dense_block_count", 0, &lead);
    DS__U("expert_count", 0, &c->n_expert);
    DS__U("expert_used_count", 0, &c->n_expert_used);
    DS__U("expert_shared_count", 0, &c->n_expert_shared);
    DS__U("expert_feed_forward_length", 0, &c->n_ff_expert);
    DS__U("expert_gating_func", 0, &gating);
    DS__U("expert_group_count", 0, &c->n_expert_groups);
    DS__U("expert_group_used_count", 0, &c->n_groups_used);
    DS__U("rope.scaling.original_context_length", 0, &c->rope_yarn_orig_ctx);
    DS__F("attention.layer_norm_rms_epsilon", &c->norm_eps);
    DS__F("rope.freq_base", &c->rope_base);
    DS__F("expert_weights_scale", &c->routed_scale);
    DS__F("rope.scaling.yarn_log_multiplier", &c->rope_yarn_log_mul);
#undef DS__U
#undef DS__F
    if (ds_gguf_get_bool(g, "deepseek2.expert_weights_norm", &norm) == DS_OK) c->norm_topk = norm != 0;
    if (ds_gguf_get_str(g, "deepseek2.rope.scaling.type", &st) == DS_OK && st.len == 4 && !memcmp(st.ptr, "yarn", 4)) {
        if ((s = ds__dsk_f32(g, "rope.scaling.factor", &c->rope_yarn_factor)) != DS_OK) return s;
    }
    if (c->n_layer < 1 || c->n_layer > DS_MAX_LAYERS) return ds__fail(DS_ERR_UNSUPPORTED, "deepseek2: %d layers (1..%d)", c->n_layer, DS_MAX_LAYERS);
    if (c->n_embd < 1 || c->n_head < 1) return ds__fail(DS_ERR_FORMAT, "deepseek2: embedding_length and head_count must be positive");
    c->n_head_kv = c->n_head;
    c->mla_kv_b_split = key_mla && val_mla;
    c->v_head_dim = c->mla_kv_b_split ? val_mla : val_len;
    c->qk_nope_dim = (c->mla_kv_b_split ? key_mla : key_len) - c->qk_rope_dim;
    c->head_dim = c->qk_nope_dim + c->qk_rope_dim;
    c->n_rot = c->qk_rope_dim;
    if (c->mla_kv_b_split && (key_len != c->kv_lora_rank + c->qk_rope_dim || val_len != c->kv_lora_rank))
        return ds__fail(DS_ERR_FORMAT, "deepseek2: key/value lengths %d/%d do not match the split MLA layout (%d/%d)", key_len, val_len, c->kv_lora_rank + c->qk_rope_dim, c->kv_lora_rank);
    if (gating > 2) return ds__fail(DS_ERR_UNSUPPORTED, "deepseek2: expert_gating_func %d (1 softmax, 2 sigmoid)", gating);
    c->gating = gating == 2 ? DS_GATING_SIGMOID : DS_GATING_SOFTMAX;
    if (lead > c->n_layer) return ds__fail(DS_ERR_FORMAT, "deepseek2: %d leading dense layers of %d", lead, c->n_layer);
    if (c->n_expert == 0) lead = c->n_layer;
    for (i = 0; i < c->n_layer; i++) {
        c->layers[i].attn = DS_ATTN_MLA;
        c->layers[i].ffn = i < lead ? DS_FFN_DENSE : DS_FFN_MOE;
    }
    if (lead > 0 && c->n_ff < 1) return ds__fail(DS_ERR_FORMAT, "deepseek2: dense layers need feed_forward_length");
    return ds_model_config_check_deepseek(c);
}

/* The deepseek2 metadata of a config, as llama.cpp reads it. The layers must be MLA with a
   run of dense FFN layers first and MoE layers after (llama.cpp's leading_dense_block_count). */
DS_API ds_status ds_model_config_write_deepseek2(const ds_model_config *c, ds_gguf_writer *w) {
    ds_status s = DS_OK;
    int i, lead = 0, split;
    if (!c || !w) return ds__fail(DS_ERR_INVALID_ARG, "deepseek2: NULL argument");
    if ((s = ds_model_config_check_deepseek(c)) != DS_OK) return s;
    while (lead < c->n_layer && c->layers[lead].ffn == DS_FFN_DENSE) lead++;
    for (i = 0; i < c->n_layer; i++) {
        if (c->layers[i].attn != DS_ATTN_MLA) return ds__fail(DS_ERR_UNSUPPORTED, "deepseek2: layer %d: a deepseek2 file has MLA attention in every layer", i);
        if (i >= lead && c->layers[i].ffn != DS_FFN_MOE) return ds__fail(DS_ERR_UNSUPPORTED, "deepseek2: layer %d: dense FFN layers must all come before the MoE layers", i);
    }
    split = c->mla_kv_b_split;
#define DS__WU(key, v) if (s == DS_OK) s = ds_gguf_writer_set_u32(w, "deepseek2." key, (uint32_t)(v))
#define DS__WF(key, v) if (s == DS_OK) s = ds_gguf_writer_set_f32(w, "deepseek2." key, (float)(v))
    if (s == DS_OK) s = ds_gguf_writer_set_str(w, "general.architecture", "deepseek2");
    DS__WU("context_length", c->n_ctx ? c->n_ctx : 4096);
    DS__WU("embedding_length", c->n_embd);
    DS__WU("block_count", c->n_layer);
    DS__WU("feed_forward_length", c->n_ff);
    DS__WU("attention.head_count", c->n_head);
    DS__WU("attention.head_count_kv", split ? 1 : c->n_head);
    DS__WU("attention.key_length", split ? c->kv_lora_rank + c->qk_rope_dim : ds__mla_dq(c));
    DS__WU("attention.value_length", split ? c->kv_lora_rank : c->v_head_dim);
    if (split) {
        DS__WU("attention.key_length_mla", ds__mla_dq(c));
        DS__WU("attention.value_length_mla", c->v_head_dim);
    }
    DS__WF("attention.layer_norm_rms_epsilon", c->norm_eps > 0.0f ? c->norm_eps : 1e-6f);
    DS__WF("rope.freq_base", c->rope_base > 0.0f ? c->rope_base : 10000.0f);
    DS__WU("rope.dimension_count", c->qk_rope_dim);
    DS__WU("attention.q_lora_rank", c->q_lora_rank);   /* 0 written too: llama.cpp asks for it unless n_layer is 27 */
    DS__WU("attention.kv_lora_rank", c->kv_lora_rank);
    DS__WU("leading_dense_block_count", lead);
    DS__WU("expert_count", c->n_expert);
    DS__WU("expert_used_count", c->n_expert_used);
    DS__WU("expert_shared_count", c->n_expert_shared);
    DS__WU("expert_feed_forward_length", c->n_ff_expert);
    DS__WF("expert_weights_scale", c->routed_scale > 0.0f ? c->routed_scale : 1.0f);
    if (s == DS_OK) s = ds_gguf_writer_set_bool(w, "deepseek2.expert_weights_norm", c->norm_topk != 0);
    DS__WU("expert_gating_func", c->gating == DS_GATING_SIGMOID ? 2 : 1);
    if (c->n_expert_groups > 1) {
        DS__WU("expert_group_count", c->n_expert_groups);
        DS__WU("expert_group_used_count", c->n_groups_used);
    }
    if (c->rope_yarn_factor > 1.0f) {
        if (s == DS_OK) s = ds_gguf_writer_set_str(w, "deepseek2.rope.scaling.type", "yarn");
        DS__WF("rope.scaling.factor", c->rope_yarn_factor);
        DS__WU("rope.scaling.original_context_length", c->rope_yarn_orig_ctx);
        DS__WF("rope.scaling.yarn_log_multiplier", c->rope_yarn_log_mul);
    }
#undef DS__WU
#undef DS__WF
    return s;
}

/* ---- deepseek2 weights ----------------------------------------------------------------------- */
static int ds__dsk_weight_type_ok(ds_type t) {
    return t == DS_TYPE_F32 || t == DS_TYPE_F16 || t == DS_TYPE_BF16 || t == DS_TYPE_Q4_0 || t == DS_TYPE_Q4_1 ||
           t == DS_TYPE_Q8_0 || t == DS_TYPE_Q4_K || t == DS_TYPE_Q6_K;
}

/* Tensor `name` of shape [ne0, ne1, ne2] (trailing 1s may be omitted in the file); a vector
   (ne1 == 1, ne2 == 1) must be F32. Absent: an error unless optional (data stays NULL). */
static ds_status ds__dsk_tensor(const ds_gguf *g, const char *name, int64_t ne0, int64_t ne1, int64_t ne2, int optional, ds__wmat *out) {
    const ds_gguf_tensor *t = ds_gguf_find_tensor(g, name);
    memset(out, 0, sizeof *out);
    if (!t) return optional ? DS_OK : ds__fail(DS_ERR_FORMAT, "deepseek2: tensor '%s' is missing", name);
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != ne2 || t->ne[3] != 1)
        return ds__fail(DS_ERR_FORMAT, "deepseek2: tensor '%s' has shape [%lld, %lld, %lld], expected [%lld, %lld, %lld]", name, (long long)t->ne[0],
                        (long long)t->ne[1], (long long)t->ne[2], (long long)ne0, (long long)ne1, (long long)ne2);
    if (ne1 == 1 && ne2 == 1 ? t->type != DS_TYPE_F32 : !ds__dsk_weight_type_ok(t->type))
        return ds__fail(DS_ERR_UNSUPPORTED, "deepseek2: tensor '%s' has type %s, which is not supported here", name, ds_type_name(t->type));
    out->data = t->data;
    out->type = t->type;
    out->rows = ne1 * ne2;
    out->cols = ne0;
    return DS_OK;
}

typedef struct ds__dsk_layer {
    const float *attn_norm, *ffn_norm;   /* (C) */
    ds__mla_layer mla;
    ds__ffn_layer ffn;                   /* dense layers */
    ds__moe_layer moe;                   /* MoE layers */
} ds__dsk_layer;

static DS__MAYBE_UNUSED ds_status ds__deepseek2_load_layer(const ds_gguf *g, const ds_model_config *c, int il, ds__dsk_layer *L) {
    int64_t C = c->n_embd, H = c->n_head, Dq = ds__mla_dq(c), Dn = c->qk_nope_dim, Dv = c->v_head_dim, R = c->kv_lora_rank, Dr = c->qk_rope_dim;
    int64_t Rq = c->q_lora_rank, E = c->n_expert, F = c->n_ff_expert, SF = (int64_t)c->n_expert_shared * c->n_ff_expert;
    ds__wmat v;
    char n[96];
    ds_status s;
    memset(L, 0, sizeof *L);
#define DS__T(dst, suffix, a, b, d, opt) \
    snprintf(n, sizeof n, "blk.%d.%s", il, suffix); \
    if ((s = ds__dsk_tensor(g, n, a, b, d, opt, dst)) != DS_OK) return s
#define DS__V(dst, suffix, len, opt) \
    DS__T(&v, suffix, len, 1, 1, opt); \
    dst = DS__CAST(const float *, v.data)
    DS__V(L->attn_norm, "attn_norm.weight", C, 0);
    DS__V(L->ffn_norm, "ffn_norm.weight", C, 0);
    if (Rq) {
        DS__T(&L->mla.wq_a, "attn_q_a.weight", C, Rq, 1, 0);
        DS__V(L->mla.q_a_norm, "attn_q_a_norm.weight", Rq, 0);
        DS__T(&L->mla.wq_b, "attn_q_b.weight", Rq, H * Dq, 1, 0);
    } else {
        DS__T(&L->mla.wq, "attn_q.weight", C, H * Dq, 1, 0);
    }
    DS__T(&L->mla.wkv_a, "attn_kv_a_mqa.weight", C, R + Dr, 1, 0);
    DS__V(L->mla.kv_a_norm, "attn_kv_a_norm.weight", R, 0);
    if (c->mla_kv_b_split) {
        DS__T(&L->mla.wk_b, "attn_k_b.weight", Dn, R, H, 0);
        DS__T(&L->mla.wv_b, "attn_v_b.weight", R, Dv, H, 0);
    } else {
        DS__T(&L->mla.wkv_b, "attn_kv_b.weight", R, H * (Dn + Dv), 1, 0);
    }
    DS__T(&L->mla.wo, "attn_output.weight", H * Dv, C, 1, 0);
    if (c->layers[il].ffn == DS_FFN_DENSE) {
        DS__T(&L->ffn.gate, "ffn_gate.weight", C, c->n_ff, 1, 0);
        DS__T(&L->ffn.up, "ffn_up.weight", C, c->n_ff, 1, 0);
        DS__T(&L->ffn.down, "ffn_down.weight", c->n_ff, C, 1, 0);
        return DS_OK;
    }
    DS__T(&L->moe.gate_inp, "ffn_gate_inp.weight", C, E, 1, 0);
    DS__V(L->moe.exp_bias, "exp_probs_b.bias", E, 1);
    DS__T(&L->moe.gate_exps, "ffn_gate_exps.weight", C, F, E, 0);
    DS__T(&L->moe.up_exps, "ffn_up_exps.weight", C, F, E, 0);
    DS__T(&L->moe.down_exps, "ffn_down_exps.weight", F, C, E, 0);
    if (SF) {
        DS__T(&L->moe.gate_sh, "ffn_gate_shexp.weight", C, SF, 1, 0);
        DS__T(&L->moe.up_sh, "ffn_up_shexp.weight", C, SF, 1, 0);
        DS__T(&L->moe.down_sh, "ffn_down_shexp.weight", SF, C, 1, 0);
    }
#undef DS__T
#undef DS__V
    return DS_OK;
}

/* One transformer block on the residual stream x (T, C): MLA then the layer's FFN kind. */
static DS__MAYBE_UNUSED void ds__deepseek2_block(ds_pool *pool, const ds_model_config *c, const ds__dsk_layer *L, int il, float *x, float *xn, float *y, int T, int pos0, float *cache, int naive, ds__dsk_scratch *s) {
    int t, C = c->n_embd;
    for (t = 0; t < T; t++) ds__rmsnorm(xn + (size_t)t * C, x + (size_t)t * C, L->attn_norm, C, c->norm_eps);
    ds__mla_forward(pool, c, &L->mla, xn, T, pos0, cache, naive, y, s);
    for (t = 0; t < T * C; t++) x[t] += y[t];
    for (t = 0; t < T; t++) ds__rmsnorm(xn + (size_t)t * C, x + (size_t)t * C, L->ffn_norm, C, c->norm_eps);
    if (c->layers[il].ffn == DS_FFN_MOE) ds__moe_forward(pool, c, &L->moe, xn, T, y, s);
    else ds__swiglu_ffn(pool, &L->ffn.gate, &L->ffn.up, &L->ffn.down, 0, 0, c->n_ff, C, xn, T, y, s);
    for (t = 0; t < T * C; t++) x[t] += y[t];
}

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
